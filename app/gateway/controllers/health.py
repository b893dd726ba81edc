"""Probes: `/health/live` (the process answers), `/health/ready` (this process's own dependencies
reachable and not draining), `/health` (every check with its status and latency, breakers
included, and each module with the processes serving it).

None needs auth, is rate limited, or counts in request metrics.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import msgspec
from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from loguru import logger

CHECK_TIMEOUT_SECONDS = 1.0


class CheckResult(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, rename="camel"):
    status: str
    """`up`, `down`, or for a breaker its state: `closed`, `half_open`, `open`."""
    latency_ms: float | None = None
    error: str | None = None
    """`timed out` or `unavailable`; the cause is in the server's log, never here."""


class ModuleReport(msgspec.Struct, frozen=True, kw_only=True):
    status: str
    """`up` when at least one process serves the module, else `down`."""
    workers: int
    """Processes serving the module: this one for a module in process; for a remote module, the
    workers that answered the last census (taken every second)."""


class NotificationsReport(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    dead_letters: int
    """Notifications parked after their last delivery attempt, in every subscribing module
    (`eventboard dead-letters list` shows them, `replay` delivers them again)."""
    outbox_lag_seconds: float
    """Age of the oldest notification not yet published, in any outbox (0: none waiting)."""


class HealthReport(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    status: str
    """`ok`; `degraded` when a breaker is not closed, a notification is dead-lettered (200) or
    a module has no worker (503); `unavailable` when a dependency of this process is down
    (503)."""
    checks: dict[str, CheckResult]
    modules: dict[str, ModuleReport] | None = None
    """Each module and the processes serving it (`/health` only)."""
    notifications: NotificationsReport | None = None
    """Dead letters and outbox lag (`/health` only; absent when the database does not answer)."""


class Liveness(msgspec.Struct, frozen=True):
    status: str


@dataclass(frozen=True)
class Probes:
    """What the probes look at, supplied by the composition root."""

    checks: Mapping[str, Callable[[], Awaitable[None]]]
    """Dependency checks (database, bus): each raises when its dependency is unusable."""
    breakers: Callable[[], Mapping[str, str]]
    """Breaker state per command pattern."""
    workers: Callable[[], Mapping[str, int]]
    """Processes serving each module (1 for a module in this process)."""
    notifications: Callable[[], Awaitable[NotificationsReport]] | None = None
    """Dead letters and outbox lag, read from the database."""


async def _run(name: str, check: Callable[[], Awaitable[None]]) -> tuple[str, CheckResult]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await check()
    except Exception as exc:  # a probe reports, it never fails the request
        # The cause goes to the log; the response, which anyone may read, never carries SQL,
        # paths or exception text.
        timed_out = isinstance(exc, TimeoutError)
        logger.opt(exception=None if timed_out else exc).warning(
            "health check failed",
            check=name,
            reason="timed out" if timed_out else type(exc).__name__,
        )
        return name, CheckResult(status="down", error="timed out" if timed_out else "unavailable")
    latency = round((time.perf_counter() - started) * 1000, 2)
    return name, CheckResult(status="up", latency_ms=latency)


async def _dependencies(probes: Probes) -> dict[str, CheckResult]:
    results = await asyncio.gather(*(_run(n, c) for n, c in probes.checks.items()))
    return dict(results)


async def _notifications(probes: Probes) -> NotificationsReport | None:
    if probes.notifications is None:
        return None
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            return await probes.notifications()
    except Exception as exc:  # the database check reports the cause
        logger.bind(reason=type(exc).__name__).warning("notifications report failed")
        return None


def _status_code(checks: Mapping[str, CheckResult]) -> int:
    return 503 if any(c.status == "down" for c in checks.values()) else 200


class HealthController(Controller):
    path = "/health"
    tags = ["health"]
    security = []

    @get("/live", operation_id="getLiveness", summary="The process is up")
    async def live(self) -> Liveness:
        return Liveness(status="ok")

    @get(
        "/ready",
        operation_id="getReadiness",
        summary="Dependencies reachable and not draining (503 otherwise)",
        responses={503: ResponseSpec(HealthReport, description="A dependency is down")},
    )
    async def ready(self, probes: NamedDependency[Probes]) -> Response[HealthReport]:
        checks = await _dependencies(probes)
        code = _status_code(checks)
        status = "ok" if code == 200 else "unavailable"
        return Response(HealthReport(status=status, checks=checks), status_code=code)

    @get(
        "/",
        operation_id="getHealth",
        summary="Every check, with status and latency",
        responses={503: ResponseSpec(HealthReport, description="A dependency is down")},
    )
    async def health(self, probes: NamedDependency[Probes]) -> Response[HealthReport]:
        checks = await _dependencies(probes)
        code = _status_code(checks)
        breakers = {f"breaker:{m}": CheckResult(status=s) for m, s in probes.breakers().items()}
        modules = {
            module: ModuleReport(status="up" if count else "down", workers=count)
            for module, count in sorted(probes.workers().items())
        }
        notifications = await _notifications(probes)
        parked = notifications is not None and notifications.dead_letters > 0
        status = "unavailable" if code != 200 else "ok"
        if code == 200 and any(m.status == "down" for m in modules.values()):
            status, code = "degraded", 503
        elif code == 200 and (parked or any(b.status != "closed" for b in breakers.values())):
            status = "degraded"
        report = HealthReport(
            status=status,
            checks=checks | breakers,
            modules=modules,
            notifications=notifications,
        )
        return Response(report, status_code=code)
