"""Fault injection (`BUS_FAULTS`; refused in production): delays and errors per command pattern,
injected on the handle side, to see deadlines, retries and error handling work without stopping
a real service. Wired in by the composition root; not part of the bus itself."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import Awaitable, Callable, Sequence

from loguru import logger

from app.bus.envelope import Outcome
from app.bus.pipeline import Context, HandleNext
from app.errors import Unavailable
from app.settings import Fault
from app.storage.sqlite import sqlite_error


class FaultMiddleware:
    def __init__(
        self,
        faults: Sequence[Fault],
        *,
        rand: Callable[[], float] = random.random,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._faults = {fault.cmd: fault for fault in faults}
        self._failures_left = {fault.cmd: fault.fail_times for fault in faults}
        self._rand = rand
        self._sleep = sleep
        self.injected = 0
        """How many faults (delays and errors) were injected: for test and chaos reports."""

    def applies_to(self, pattern: str, read_only: bool) -> bool:
        return pattern in self._faults

    async def __call__(self, context: Context, call_next: HandleNext) -> Outcome:
        fault = self._faults.get(context.envelope.pattern)
        if fault is None:
            return await call_next(context)
        delayed = fault.delay_ms > 0 and (fault.delay_rate >= 1 or self._rand() < fault.delay_rate)
        if delayed and not fault.after_handler:
            self.injected += 1
            logger.bind(cmd=fault.cmd, delay_ms=fault.delay_ms).warning("fault injected: delay")
            await self._sleep(fault.delay_ms / 1000)
        if fault.error is not None and self._should_fail(fault):
            self.injected += 1
            raise _error(fault)
        outcome = await call_next(context)
        if delayed and fault.after_handler:
            self.injected += 1
            await self._sleep(fault.delay_ms / 1000)
        return outcome

    async def inject(self, name: str) -> None:
        """A fault for a notification subscriber, named `<module>:<pattern>`
        (`audit:events.approved`): the delivery fails as the subscriber failing would."""
        fault = self._faults.get(name)
        if fault is None:
            return
        if fault.error is not None and self._should_fail(fault):
            self.injected += 1
            raise _error(fault)

    def _should_fail(self, fault: Fault) -> bool:
        if self._failures_left[fault.cmd] > 0:
            self._failures_left[fault.cmd] -= 1
            return True
        return fault.error_rate > 0 and self._rand() < fault.error_rate


def _error(fault: Fault) -> Exception:
    if fault.error == "unavailable":
        return Unavailable(
            f"Injected fault: {fault.cmd} is unavailable", code="INJECTED_FAULT", retry_after=1
        )
    if fault.error == "locked":
        return sqlite_error(sqlite3.OperationalError("database is locked (injected fault)"))
    return RuntimeError(f"injected internal error in {fault.cmd}")
