"""A worker's own HTTP port (METRICS_PORT): Prometheus `/metrics` (the commands this worker
handled: counts, latency, timeouts, idempotency outcomes), `/health/live` and `/health/ready`.

Served by prometheus-client's own threaded WSGI server, on a thread of its own: a scrape never
waits for the event loop, and a busy loop never delays a scrape. Readiness asks the loop for
the worker's checks (NATS connected, database reachable, not draining), waiting at most a second.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from loguru import logger
from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

CHECK_TIMEOUT_SECONDS = 1.0

Check = Callable[[], Awaitable[None]]
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged (the stdlib handler would write every one to stderr)."""


class WorkerPort:
    def __init__(
        self, host: str, port: int, checks: Mapping[str, Check], loop: asyncio.AbstractEventLoop
    ) -> None:
        self._checks = checks
        self._loop = loop
        self._metrics = make_wsgi_app()
        self._server = make_server(host, port, self._app, ThreadingWSGIServer, handler_class=_Quiet)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="worker-port", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def start(self) -> None:
        self._thread.start()
        logger.bind(port=self.port).info("metrics and probes served")

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return self._metrics(environ, start_response)  # type: ignore[no-any-return]
        if path == "/health/live":
            return _json(start_response, 200, {"status": "ok"})
        if path == "/health/ready":
            checks = {name: self._check(check) for name, check in self._checks.items()}
            ready = all(result["status"] == "up" for result in checks.values())
            report = {"status": "ok" if ready else "unavailable", "checks": checks}
            return _json(start_response, 200 if ready else 503, report)
        return _json(start_response, 404, {"status": "not found"})

    def _check(self, check: Check) -> dict[str, str]:
        """Run a check on the worker's loop (from this server thread)."""

        async def bounded() -> None:
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
                await check()

        try:
            asyncio.run_coroutine_threadsafe(bounded(), self._loop).result()
        except Exception as exc:  # reported as down; the cause goes to the log, not the answer
            logger.bind(reason=type(exc).__name__).warning("worker readiness check failed")
            return {"status": "down"}
        return {"status": "up"}


def _json(start_response: StartResponse, status: int, body: object) -> list[bytes]:
    data = json.dumps(body).encode()
    reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
    start_response(
        f"{status} {reason}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
    )
    return [data]
