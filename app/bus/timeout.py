"""Deadlines. The envelope carries one absolute deadline for the whole call, retries included.

Send side: the deadline is a budget for the whole call (as gRPC's and Envoy's are): an attempt
may use all the time left, and stops waiting at the deadline with `Timeout` (504
UPSTREAM_TIMEOUT), whatever the module is doing; a retry happens only while time is left. An
optional per-attempt cap (`PER_TRY_TIMEOUT`, Envoy's `per_try_timeout`) ends an attempt sooner,
so that, say, a command stranded on a worker that died is retried on another one before the
deadline.

Handle side: work whose deadline has passed is refused before it starts; a delivery from another
process is cancelled at the deadline, so its transaction rolls back (one from this process is
cancelled by its sender's own timer).

The timer: one `Deadlines` per event loop, a dictionary of the waits in progress and a single
loop timer armed for the earliest of them. Starting and ending a wait is a dictionary insert and
delete; the loop timer fires about once per deadline period under load (at the earliest deadline
still registered) and is re-armed only when a wait ends sooner than every other. A loop timer per
command (`loop.call_at`, `asyncio.timeout`) would cost more, and on uvloop each one leaves a
cancelled handle holding a copy of the task's context in a reference cycle: garbage that
survives into the oldest generation, whose collections then pause the process for ~100 ms
(bench/RESULTS.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from app.bus.envelope import Envelope

T = TypeVar("T")


class Expired(Exception):
    """The time given to `within` ran out, and the work was cancelled."""


def attempt_time(envelope: Envelope[Any], now: float, per_try: float | None = None) -> float:
    """How long this attempt may wait: the time left before the deadline, or `per_try` if that
    is shorter."""
    assert envelope.deadline is not None
    left = envelope.deadline - now
    return left if per_try is None or per_try >= left else per_try


class Deadlines:
    """The waits in progress on one event loop, and the one loop timer that ends them."""

    __slots__ = ("_armed", "_armed_at", "_loop", "_next", "_waits")

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waits: dict[int, list[Any]] = {}  # number -> [when, task, fired]
        self._next = 0
        self._armed: asyncio.TimerHandle | None = None
        self._armed_at = 0.0

    def start(self, seconds: float) -> tuple[int, list[Any]]:
        """Cancel the current task in `seconds` unless `stop` comes first. Returns the wait."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # first use, or a new loop (tests run many)
            self._loop, self._waits, self._armed = loop, {}, None
        when = loop.time() + seconds
        wait = [when, asyncio.current_task(), False]
        self._next += 1
        self._waits[self._next] = wait
        if self._armed is None or when < self._armed_at:
            self._arm(when)
        return self._next, wait

    def stop(self, number: int) -> None:
        self._waits.pop(number, None)

    def _arm(self, when: float) -> None:
        if self._armed is not None:
            self._armed.cancel()
        assert self._loop is not None
        self._armed = self._loop.call_at(when, self._fire)
        self._armed_at = when

    def _fire(self) -> None:
        self._armed = None
        assert self._loop is not None
        now = self._loop.time()
        earliest = None
        for number, wait in list(self._waits.items()):
            if wait[0] <= now:
                del self._waits[number]
                wait[2] = True
                wait[1].cancel()
            elif earliest is None or wait[0] < earliest:
                earliest = wait[0]
        if earliest is not None:
            self._arm(earliest)


async def within(deadlines: Deadlines, seconds: float, work: Awaitable[T]) -> T:
    """Await `work` in the current task, cancelling it after `seconds`: then `Expired`. A
    cancellation from elsewhere stays a cancellation."""
    number, wait = deadlines.start(seconds)
    try:
        return await work
    except asyncio.CancelledError:
        if wait[2] and wait[1].uncancel() == 0:
            raise Expired from None
        raise
    finally:
        deadlines.stop(number)
