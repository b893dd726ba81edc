"""Rate limits with the `limits` library: in memory, or on Redis (`REDIS_URL`) so they hold
across workers and hosts.

- Per client (IP), on every route but the probes and /metrics: `RATE_LIMIT_PER_MINUTE` (sliding
  window counter; 0 disables), checked at the ASGI edge before anything else runs.
- Failed logins per (email, client IP): `LOGIN_FAILURES_PER_15MIN` (moving window); the next
  attempt after that many failures is refused without checking the password.

A refusal is 429 problem+json with `Retry-After` and `RateLimit-Limit/Remaining/Reset`.
"""

from __future__ import annotations

import time
from typing import Any

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string
from litestar.enums import ScopeType
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Receive,
    Scope,
    Send,
)

from app.gateway.problems import RateLimitExceeded, problem_body
from app.metrics import metrics
from app.settings import Settings

_UNLIMITED_PREFIXES = ("/health", "/metrics")


class RateLimits:
    def __init__(self, settings: Settings) -> None:
        self._storage: Storage = (
            storage_from_string(f"async+{settings.redis_url}")  # type: ignore[assignment]
            if settings.redis_url
            else MemoryStorage()
        )
        self._clients = SlidingWindowCounterRateLimiter(self._storage)
        self._logins = MovingWindowRateLimiter(self._storage)
        self._per_client: RateLimitItem | None = (
            RateLimitItemPerMinute(settings.rate_limit_per_minute)
            if settings.rate_limit_per_minute
            else None
        )
        self._login_failures: RateLimitItem | None = (
            RateLimitItemPerMinute(settings.login_failures_per_15min, 15)
            if settings.login_failures_per_15min
            else None
        )

    async def check_client(self, client: str) -> None:
        if self._per_client is None or await self._clients.hit(self._per_client, "client", client):
            return
        metrics().rate_limited.labels("client").inc()
        raise await self._exceeded(
            self._clients, self._per_client, ("client", client), "Too many requests"
        )

    async def check_login(self, email: str, client: str) -> None:
        if self._login_failures is None:
            return
        key = ("login-failures", email.strip().lower(), client)
        if await self._logins.test(self._login_failures, *key):
            return
        metrics().rate_limited.labels("login").inc()
        raise await self._exceeded(
            self._logins, self._login_failures, key, "Too many failed logins; try again later"
        )

    async def login_failed(self, email: str, client: str) -> None:
        if self._login_failures is not None:
            await self._logins.hit(
                self._login_failures, "login-failures", email.strip().lower(), client
            )

    async def close(self) -> None:
        close = getattr(self._storage, "close", None)
        if close is not None:
            await close()

    async def _exceeded(
        self, limiter: Any, item: RateLimitItem, key: tuple[str, ...], message: str
    ) -> RateLimitExceeded:
        stats = await limiter.get_window_stats(item, *key)
        return RateLimitExceeded(
            message, limit=item.amount, reset_in=stats.reset_time - time.time()
        )


def client_of(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class RateLimitASGI:
    """The per-client limit, before routing, auth or validation spend anything on the request."""

    def __init__(self, app: ASGIApp, limits: RateLimits) -> None:
        self._app = app
        self._limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and not scope["path"].startswith(_UNLIMITED_PREFIXES):
            try:
                await self._limits.check_client(client_of(scope))
            except RateLimitExceeded as exceeded:
                body = problem_body(429, exceeded.code, exceeded.message)
                headers = {"Content-Type": "application/problem+json", **exceeded.headers()}
                start: HTTPResponseStartEvent = {
                    "type": "http.response.start",
                    "status": 429,
                    "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
                }
                await send(start)
                end: HTTPResponseBodyEvent = {
                    "type": "http.response.body",
                    "body": body,
                    "more_body": False,
                }
                await send(end)
                return
        await self._app(scope, receive, send)
