"""The send side of the bus, in one frame per command:

    breaker -> attempts (each under its deadline timer, retried with backoff) -> transport

and, once it ends, its metrics, its entry in the request's record (the edge's log line names
it) and, when something went wrong or it was slow, a WARNING line of its own.

The policies live beside it, one concern a file: `breaker.py` (when a pattern is cut off),
`retry.py` (what is retried, when, and the budget), `timeout.py` (the deadline timer). What a
pattern needs on this side (its breaker, its module's retry budget, its metric children) is
looked up once, at its first command.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec

from app import correlation
from app.bus.breaker import Breakers, CircuitBreaker, failed
from app.bus.envelope import Envelope, module_of
from app.bus.logging import DEBUG, WARNING, command_line
from app.bus.metrics import CommandMetrics
from app.bus.retry import Retries, RetryBudget
from app.bus.timeout import Deadlines, attempt_time
from app.errors import AppError, Category, Timeout
from app.metrics import metrics

if TYPE_CHECKING:
    from app.bus.envelope import Outcome

Deliver = Callable[[Envelope[Any]], Awaitable["Outcome"]]

WENT_WRONG = frozenset(
    {Category.UNAVAILABLE, Category.TIMEOUT, Category.INTERNAL, Category.OVERLOADED}
)
"""Errors that get a WARNING line of their own (domain refusals are outcomes, not problems)."""


class _Route:
    """What one pattern needs on the send side, made at its first command."""

    __slots__ = ("breaker", "budget", "metrics", "timeouts")

    def __init__(self, pattern: str, breakers: Breakers | None, retries: Retries | None) -> None:
        self.breaker: CircuitBreaker | None = breakers.breaker(pattern) if breakers else None
        self.budget: RetryBudget | None = (
            retries.budget(module_of(pattern)) if retries is not None else None
        )
        self.metrics = CommandMetrics(pattern, "send")
        self.timeouts = metrics().timeouts.labels(pattern, "send")


class Sender:
    def __init__(
        self,
        deliver: Deliver,
        *,
        breakers: Breakers | None = None,
        retries: Retries | None = None,
        slow_command: float = 0.5,
        per_try: float | None = None,
        clock: Callable[[], float] = time.time,
        deadlines: Deadlines | None = None,
    ) -> None:
        """`per_try`: the longest one attempt may wait (none: all the time left)."""
        self._deliver = deliver
        self._per_try = per_try
        self._deadlines = deadlines or Deadlines()
        self._breakers = breakers
        self._retries = retries
        self._slow = slow_command
        self._clock = retries.clock if retries is not None else clock
        self._routes: dict[str, _Route] = {}

    async def __call__(self, envelope: Envelope[Any]) -> Outcome:
        route = self._routes.get(envelope.pattern)
        if route is None:
            route = self._routes[envelope.pattern] = _Route(
                envelope.pattern, self._breakers, self._retries
            )
        if route.budget is not None:
            route.budget.record_request()
        breaker = route.breaker
        probe = False
        dependency_failed: bool | None = None  # None: nothing learned (cancelled)
        outcome = "ok"
        went_wrong = False
        started = time.perf_counter()
        try:
            if breaker is not None:
                probe = breaker.acquire()
                began = breaker.clock()
            while True:
                try:
                    if envelope.deadline is None:
                        result = await self._deliver(envelope)
                    else:
                        result = await self._attempt(envelope, route)
                    break
                except AppError as error:
                    delay = (
                        self._retries.backoff(error, envelope, route.budget)
                        if self._retries is not None and route.budget is not None
                        else None
                    )
                    if delay is None:
                        raise
                    await self._retries.sleep(delay)  # type: ignore[union-attr]
                    envelope = msgspec.structs.replace(envelope, attempt=envelope.attempt + 1)
            if breaker is not None:
                dependency_failed = breaker.clock() - began > breaker.slow_call
            return result
        except AppError as error:
            outcome = error.code
            dependency_failed = failed(error)
            went_wrong = error.category in WENT_WRONG
            raise
        except asyncio.CancelledError:
            outcome = "CancelledError"
            raise
        except Exception as error:
            outcome = type(error).__name__
            dependency_failed = went_wrong = True
            raise
        finally:
            seconds = time.perf_counter() - started
            if breaker is not None:
                breaker.release(probe, dependency_failed)
            route.metrics.record(outcome, seconds)
            self._report(envelope, outcome, seconds, went_wrong)

    async def _attempt(self, envelope: Envelope[Any], route: _Route) -> Outcome:
        """One attempt, under its deadline (`timeout.within`, written out here: it runs for
        every command)."""
        assert envelope.deadline is not None
        allowed = attempt_time(envelope, self._clock(), self._per_try)
        if allowed > 0:
            number, wait = self._deadlines.start(allowed)
            try:
                return await self._deliver(envelope)
            except asyncio.CancelledError:
                if not (wait[2] and wait[1].uncancel() == 0):
                    raise
            finally:
                self._deadlines.stop(number)
        route.timeouts.inc()
        raise Timeout(f"The {module_of(envelope.pattern)} module did not answer in time")

    def _report(
        self, envelope: Envelope[Any], outcome: str, seconds: float, went_wrong: bool
    ) -> None:
        """The command goes on the request's record (for the edge's log line); a failed or slow
        one also gets a WARNING line now, a plain one a DEBUG line."""
        sent = correlation.commands.get()
        if sent is not None:
            principal = envelope.principal
            sent.append(
                correlation.SentCommand(
                    pattern=envelope.pattern,
                    attempts=envelope.attempt,
                    outcome=outcome,
                    duration_ms=round(seconds * 1000, 2),
                    user_id=principal.user_id if principal else None,
                    organization_id=principal.organization_id if principal else None,
                )
            )
        if went_wrong:
            command_line(WARNING, "command failed", envelope, "send", outcome, seconds)
        elif seconds > self._slow:
            command_line(WARNING, "slow command", envelope, "send", outcome, seconds)
        else:
            command_line(DEBUG, "sent", envelope, "send", outcome, seconds)
