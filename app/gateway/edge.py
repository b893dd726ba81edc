"""The HTTP edge: one ASGI layer in front of Litestar, run for every request (unknown routes, 405
and 413 included), before routing:

- **Correlation**: `X-Correlation-ID` (or `X-Request-ID`) when it is 1-128 characters of
  `[A-Za-z0-9._:-]`, else a new UUIDv4 (an invalid value is dropped, never echoed or logged);
  returned on every response, with `X-Response-Time`.
- **The per-client rate limit**, before anything else is spent on the request; its
  RateLimit-* headers go on the response.
- **Request metrics**, by route template: `eventboard_requests_total`,
  `eventboard_request_duration_seconds`, `eventboard_requests_error_total` (5xx) and
  `eventboard_requests_in_progress`, with their labelled children looked up once.
- **One log line per request**, written at its end: method, route template, status, duration,
  the commands it sent (module, attempts, outcome, duration), the caller's user and
  organization, the path's ids, and the problem code of an error. WARNING for a 5xx.

What the request learns on its way (the caller, the problem it answered) is kept in the scope's
`Exchange`; the commands it sent come from the bus (`app.correlation.commands`).
"""

from __future__ import annotations

import re
import time
from typing import Any, cast

from litestar.types import ASGIApp, Message, Receive, Scope, Send
from loguru import logger

from app import correlation
from app.bus.envelope import module_of, new_id
from app.bus.logging import INFO, WARNING
from app.gateway.exchange import EXCHANGE, Exchange
from app.gateway.problems import PROBLEM_JSON, RateLimitExceeded, problem_body
from app.gateway.ratelimit import RateLimits, client_of
from app.logging import enabled
from app.metrics import metrics

NOT_MEASURED = ("/health", "/metrics", "/api")
"""Probes, the metrics scrape and the docs do not count in request metrics."""
_UNLIMITED = ("/health", "/metrics")
_VALID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_APP_NAME = "eventboard"


def read_headers(headers: list[tuple[bytes, bytes]]) -> tuple[str, bool]:
    """The request's correlation id (`X-Correlation-ID`, else `X-Request-ID`, when valid), and
    whether it has an `Origin` (a cross-origin request). ASGI header names are lower case."""
    given = fallback = None
    origin = False
    for name, value in headers:
        if name == b"x-correlation-id":
            if given is None and _VALID.match(value):
                given = value.decode("ascii")
        elif name == b"x-request-id":
            if fallback is None and _VALID.match(value):
                fallback = value.decode("ascii")
        elif name == b"origin":
            origin = True
    return given or fallback or new_id(), origin


class Edge:
    def __init__(self, app: ASGIApp, limits: RateLimits) -> None:
        """`app`: Litestar's ASGI handler. When its outermost layer is Litestar's CORS
        middleware, a request without an `Origin` header skips it (that middleware reads every
        request's headers into an object of its own to look for one)."""
        self._app = app
        self._without_cors: ASGIApp = (
            getattr(app, "app", app) if type(app).__name__ == "CORSMiddleware" else app
        )
        self._limits = limits
        recorded = metrics()
        self._in_progress = {
            method: recorded.requests_in_progress.labels(method, _APP_NAME)
            for method in ("GET", "POST", "PATCH", "DELETE", "PUT", "HEAD", "OPTIONS")
        }
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, asgi_scope: Scope, receive: Receive, send: Send) -> None:
        scope = cast(dict[str, Any], asgi_scope)
        if scope["type"] != "http":
            await self._app(asgi_scope, receive, send)
            return
        started = time.perf_counter()
        correlation_id, cross_origin = read_headers(scope["headers"])
        exchange = Exchange(correlation_id)
        scope[EXCHANGE] = exchange
        status = [500]
        correlation_header = correlation_id.encode()
        quota: list[tuple[bytes, bytes]] = []

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                elapsed = (time.perf_counter() - started) * 1000
                headers = message.get("headers", ())
                if quota and any(k.lower() == b"ratelimit-limit" for k, _ in headers):
                    quota.clear()  # a refusal by another limit names that limit's figures
                message["headers"] = [
                    *headers,
                    *quota,
                    (b"x-correlation-id", correlation_header),
                    (b"x-response-time", f"{elapsed:.1f}ms".encode()),
                ]
            await send(message)

        path: str = scope["path"]
        measured = not path.startswith(NOT_MEASURED)
        in_progress = self._in_progress.get(scope["method"]) if measured else None
        if in_progress is not None:
            in_progress.inc()
        correlated = correlation.correlation_id.set(exchange.correlation_id)
        sent = correlation.commands.set(exchange.commands)
        try:
            if self._limits.per_client and not path.startswith(_UNLIMITED):
                admitted = await self._admitted(scope, send_with_headers)
                if admitted is None:
                    exchange.problem = "RATE_LIMITED"
                    return
                quota += admitted
            app = self._app if cross_origin else self._without_cors
            await app(asgi_scope, receive, send_with_headers)
        finally:
            seconds = time.perf_counter() - started
            if in_progress is not None:
                in_progress.dec()
            if measured:
                self._measure(scope, status[0], seconds)
            _log(scope, exchange, status[0], seconds)
            correlation.commands.reset(sent)
            correlation.correlation_id.reset(correlated)

    async def _admitted(
        self, scope: dict[str, Any], send: Send
    ) -> list[tuple[bytes, bytes]] | None:
        """The per-client limit: the RateLimit-* headers for the response, or None, with the 429
        sent, when the client is over it."""
        try:
            return await self._limits.check_client(client_of(scope))  # type: ignore[arg-type]
        except RateLimitExceeded as exceeded:
            headers = {"Content-Type": PROBLEM_JSON, **exceeded.headers()}
            await send(
                {
                    "type": "http.response.start",
                    "status": 429,
                    "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
                }
            )
            body = problem_body(429, exceeded.code, exceeded.message)
            await send({"type": "http.response.body", "body": body, "more_body": False})
            return None

    def _measure(self, scope: dict[str, Any], status: int, seconds: float) -> None:
        key = (scope["method"], scope.get("path_template") or "<unmatched>", status)
        children = self._children.get(key)
        if children is None:
            recorded = metrics()
            labels = (*key[:2], str(status), _APP_NAME)
            children = (recorded.requests.labels(*labels), recorded.request_seconds.labels(*labels))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)
        if status >= 500:
            metrics().request_errors.labels(*key[:2], str(status), _APP_NAME).inc()


def _log(scope: dict[str, Any], exchange: Exchange, status: int, seconds: float) -> None:
    level = WARNING if status >= 500 else INFO
    if not enabled(level):
        return
    fields: dict[str, Any] = {
        "method": scope.get("method", "-"),
        "route": scope.get("path_template") or "<unmatched>",
        "status": status,
        "duration_ms": round(seconds * 1000, 2),
    }
    if exchange.problem is not None:
        fields["code"] = exchange.problem
    principal = exchange.principal
    commands = exchange.commands
    if principal is None and commands:
        first = commands[0]
        if first.user_id is not None:
            fields["user_id"] = first.user_id
            fields["organization_id"] = first.organization_id
    elif principal is not None:
        fields["user_id"] = principal.user_id
        fields["organization_id"] = principal.organization_id
    for name, value in (scope.get("path_params") or {}).items():
        fields[name] = value if isinstance(value, str) and _SAFE_ID.match(value) else "<invalid>"
    if len(commands) == 1:
        command = commands[0]
        fields["cmd"] = command.pattern
        fields["module"] = module_of(command.pattern)
        fields["attempts"] = command.attempts
        fields["outcome"] = command.outcome
        fields["cmd_ms"] = command.duration_ms
    elif commands:
        fields["cmd"] = ",".join(c.pattern for c in commands)
        fields["module"] = ",".join(module_of(c.pattern) for c in commands)
        fields["attempts"] = ",".join(str(c.attempts) for c in commands)
        fields["outcome"] = ",".join(c.outcome for c in commands)
        fields["cmd_ms"] = ",".join(str(c.duration_ms) for c in commands)
    logger.log("WARNING" if level == WARNING else "INFO", "request", **fields)
