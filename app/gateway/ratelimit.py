"""Rate limits with the `limits` library: in memory, or on Redis (`REDIS_URL`) so they hold
across workers and hosts.

- Per client (IP), on every route but the probes and /metrics: `RATE_LIMIT_PER_MINUTE` (sliding
  window counter; 0 disables), checked at the edge (`edge.py`) before anything else runs.
- Login attempts per (email, client IP): `LOGIN_FAILURES_PER_15MIN` (moving window). Each
  attempt reserves its place atomically *before* the password is checked, so concurrent guesses
  cannot all slip in between a check and a count: once the limit is reached, the next attempt is
  refused without checking the password. A successful login clears the pair's count; any other
  outcome keeps its place (a wrong password, and also a refusal for overload or a timeout, so
  that overload cannot be used to reset the count).
- Password checks in flight per client IP, in this process: `LOGIN_CONCURRENCY_PER_CLIENT`
  (login and signup). Fairness: one client flooding the password routes gets fast 429s and
  leaves bcrypt's queue (bounded by the auth module's own admission control) to everyone else.

A refusal is 429 problem+json with `Retry-After` (and `RateLimit-Limit/Remaining/Reset` for the
counted limits); every response of a route under the per-client limit carries the RateLimit-*
headers. Refusals are logged at WARNING with the client address and, for logins, a hash of the
email (never the email or the password), at most once a minute per limit and client, saying how
many were refused since: a flood of refusals must not become a flood of log lines.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string
from litestar.types import Scope
from loguru import logger

from app.errors import RateLimited
from app.gateway.problems import RateLimitExceeded
from app.metrics import metrics
from app.settings import Settings


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
        self._password_checks_per_client = settings.login_concurrency_per_client
        self._password_checks: dict[str, int] = {}
        self._refusals = _RefusalLog()

    @property
    def per_client(self) -> bool:
        """Whether the per-client limit is on (RATE_LIMIT_PER_MINUTE is not 0)."""
        return self._per_client is not None

    async def check_client(self, client: str) -> list[tuple[bytes, bytes]]:
        """Count the request against its client's limit: the RateLimit-* headers for its
        response, or RateLimitExceeded (429) when the client is over the limit."""
        item = self._per_client
        if item is None:
            return []
        admitted = await self._clients.hit(item, "client", client)
        stats = await self._clients.get_window_stats(item, "client", client)
        reset = max(1, math.ceil(stats.reset_time - time.time()))
        if not admitted:
            metrics().rate_limited.labels("client").inc()
            self._refusals.note("rate limit reached", "client", client, allowed=item.amount)
            raise RateLimitExceeded("Too many requests", limit=item.amount, reset_in=reset)
        return [
            (b"ratelimit-limit", str(item.amount).encode()),
            (b"ratelimit-remaining", str(stats.remaining).encode()),
            (b"ratelimit-reset", str(reset).encode()),
        ]

    @asynccontextmanager
    async def login_attempt(self, email: str, client: str) -> AsyncIterator[None]:
        """Reserve the attempt's place in the (email, client) window before the password is
        checked (429 when it is full); a block that ends normally is a successful login and
        clears the window."""
        item = self._login_failures
        if item is None:
            yield
            return
        key = ("login-failures", email.strip().lower(), client)
        if not await self._logins.hit(item, *key):
            metrics().rate_limited.labels("login").inc()
            self._refusals.note(
                "login locked out after failed attempts",
                "login",
                client,
                email_sha256=hashlib.sha256(key[1].encode()).hexdigest()[:16],
                allowed=item.amount,
            )
            raise await self._exceeded(
                self._logins, item, key, "Too many failed logins; try again later"
            )
        yield
        await self._logins.clear(item, *key)

    @asynccontextmanager
    async def password_check(self, client: str) -> AsyncIterator[None]:
        """One of the client's password checks in flight (429 beyond its share)."""
        cap = self._password_checks_per_client
        if not cap:
            yield
            return
        running = self._password_checks.get(client, 0)
        if running >= cap:
            metrics().rate_limited.labels("password_checks").inc()
            self._refusals.note("too many password checks at once", "password_checks", client)
            raise TooManyPasswordChecks(retry_after=1.0)
        self._password_checks[client] = running + 1
        try:
            yield
        finally:
            left = self._password_checks[client] - 1
            if left:
                self._password_checks[client] = left
            else:
                del self._password_checks[client]

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


class _RefusalLog:
    """WARNING lines for refusals: the first for a (limit, client, detail) in a minute, then one
    a minute counting those not logged."""

    _EVERY = 60.0
    _MAX_KEYS = 10_000

    def __init__(self) -> None:
        self._since: dict[tuple[str, ...], tuple[float, int]] = {}

    def note(self, message: str, kind: str, client: str, **fields: Any) -> None:
        key = (kind, client, *map(str, fields.values()))
        now = time.monotonic()
        last, unlogged = self._since.get(key, (-math.inf, 0))
        if now - last < self._EVERY:
            self._since[key] = (last, unlogged + 1)
            return
        if len(self._since) >= self._MAX_KEYS:
            self._since.clear()
        self._since[key] = (now, 0)
        logger.warning(
            message,
            limit=kind,
            client=_loggable(client),
            refused_since_last_line=unlogged,
            **fields,
        )


def _loggable(client: str) -> str:
    """The client address as logged: an IP address, else `<invalid>` (behind a trusted proxy it
    comes from a header)."""
    try:
        return str(ipaddress.ip_address(client))
    except ValueError:
        return "<invalid>"


class TooManyPasswordChecks(RateLimited):
    default_code = "TOO_MANY_CONCURRENT_LOGINS"
    default_message = "Too many logins or signups at once from this client; try again shortly"


def client_of(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"
