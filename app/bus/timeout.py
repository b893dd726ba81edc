"""Deadlines. The envelope carries one absolute deadline for the whole call, retries included.

Send side (`TimeoutMiddleware`): stop waiting at the deadline and raise `Timeout` (504
UPSTREAM_TIMEOUT), whatever the module is doing. An attempt that may be followed by others waits
for its share of the time left (the time left over the attempts left), so a command stranded on
a worker that died can be retried on another one before the deadline.

Handle side (`DeadlineMiddleware`): refuse work whose deadline has passed before it starts, and
cancel the handler at the deadline, so its transaction rolls back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from app.bus.envelope import Envelope, module_of
from app.bus.pipeline import Context, HandleNext, SendNext
from app.errors import Timeout
from app.metrics import metrics

Clock = Callable[[], float]


class TimeoutMiddleware:
    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock

    async def __call__(self, envelope: Envelope[Any], call_next: SendNext) -> Any:
        if envelope.deadline is None:
            return await call_next(envelope)
        attempts_left = max(1, envelope.max_attempts - envelope.attempt + 1)
        budget = (envelope.deadline - self._clock()) / attempts_left
        try:
            if budget > 0:
                return await _within(budget, call_next(envelope))
        except _Expired:
            pass
        metrics().timeouts.labels(envelope.pattern, "send").inc()
        raise Timeout(f"The {module_of(envelope.pattern)} module did not answer in time")


class DeadlineMiddleware:
    """In-process deliveries (`context.local`) are cancelled by their sender's timeout; this
    only refuses them when their deadline has passed already."""

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock

    async def __call__(self, context: Context, call_next: HandleNext) -> Any:
        deadline = context.envelope.deadline
        if deadline is None:
            return await call_next(context)
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise Timeout("The deadline passed before the work started", code="DEADLINE_EXCEEDED")
        if context.local:
            return await call_next(context)
        try:
            return await _within(remaining, call_next(context))
        except _Expired:
            metrics().timeouts.labels(context.envelope.pattern, "handle").inc()
            raise Timeout(
                "The work was cancelled at its deadline", code="DEADLINE_EXCEEDED"
            ) from None


class _Expired(Exception):
    """The time given to `_within` ran out (and the work was cancelled)."""


async def _within(seconds: float, work: Awaitable[Any]) -> Any:
    """Await `work`, cancelled after `seconds`; `_Expired` then. One timer, no closure."""
    timer = asyncio.timeout(seconds)
    try:
        async with timer:
            return await work
    except TimeoutError:
        if timer.expired():
            raise _Expired from None
        raise
