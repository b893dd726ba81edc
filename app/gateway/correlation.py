"""Correlation at the edge, for every HTTP response (unknown routes, 405 and 413 included).

It wraps Litestar's outermost ASGI handler, so it runs before routing: it takes `X-Correlation-ID`
(or `X-Request-ID`) when the value is 1-128 characters of `[A-Za-z0-9._:-]` and otherwise makes a
UUIDv4 (an invalid value is dropped, never echoed or logged), binds it to the log context,
returns it with `X-Response-Time`, and writes one log line per request.
"""

from __future__ import annotations

import re
import time
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from loguru import logger

from app.bus import correlation
from app.bus.envelope import new_id

_VALID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
_HEADERS = (b"x-correlation-id", b"x-request-id")


def pick_correlation_id(headers: list[tuple[bytes, bytes]]) -> str:
    found = {name.lower(): value for name, value in headers if name.lower() in _HEADERS}
    for name in _HEADERS:
        value = found.get(name)
        if value is not None and _VALID.match(value):
            return value.decode("ascii")
    return new_id()


class CorrelationASGI:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self._app(scope, receive, send)
            return
        correlation_id = pick_correlation_id(list(scope["headers"]))
        started = time.perf_counter()
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                elapsed = (time.perf_counter() - started) * 1000
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-correlation-id", correlation_id.encode()),
                    (b"x-response-time", f"{elapsed:.1f}ms".encode()),
                ]
            await send(message)

        token = correlation.correlation_id.set(correlation_id)
        try:
            with logger.contextualize(correlation_id=correlation_id):
                try:
                    await self._app(scope, receive, send_with_headers)
                finally:
                    _log_request(scope, status, started)
        finally:
            correlation.correlation_id.reset(token)


def _log_request(scope: Scope, status: int, started: float) -> None:
    route: Any = scope.get("path_template") or "<unmatched>"
    logger.bind(
        method=scope.get("method", "-"),
        route=route,
        status=status,
        duration_ms=round((time.perf_counter() - started) * 1000, 2),
    ).info("request")
