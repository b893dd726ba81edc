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
        error = Timeout(f"The {module_of(envelope.pattern)} module did not answer in time")
        attempts_left = max(1, envelope.max_attempts - envelope.attempt + 1)
        budget = (envelope.deadline - self._clock()) / attempts_left
        try:
            return await _until(budget, lambda: call_next(envelope), error)
        except Timeout as timeout:
            if timeout is error:
                metrics().timeouts.labels(envelope.pattern, "send").inc()
            raise


class DeadlineMiddleware:
    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock

    async def __call__(self, context: Context, call_next: HandleNext) -> Any:
        deadline = context.envelope.deadline
        if deadline is None:
            return await call_next(context)
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise Timeout("The deadline passed before the work started", code="DEADLINE_EXCEEDED")
        error = Timeout("The work was cancelled at its deadline", code="DEADLINE_EXCEEDED")
        try:
            return await _until(remaining, lambda: call_next(context), error)
        except Timeout as timeout:
            if timeout is error:
                metrics().timeouts.labels(context.envelope.pattern, "handle").inc()
            raise


async def _until(remaining: float, work: Callable[[], Awaitable[Any]], error: Timeout) -> Any:
    """Run `work`, cancelled after `remaining` seconds; then raise `error` instead."""
    if remaining <= 0:
        raise error
    timer = asyncio.timeout(remaining)
    try:
        async with timer:
            return await work()
    except TimeoutError:
        if timer.expired():
            raise error from None
        raise
