"""Retries, on the send side only: exponential backoff with full jitter, within the deadline,
under a per-module budget.

What is retried: transient errors only. `Unavailable` means the command never took effect (no
handler reached, the database busy and rolled back, a transport refusing), so it is retried
whatever the command is. `Timeout` means it may have run, so it is retried only for reads and for
commands that carry an idempotency key. `CancelledError` is never caught, so never retried.

An error's `retry_after` is a hint for the API's client (the HTTP `Retry-After` when the last
attempt fails); the retries here follow their own backoff, bounded by the deadline. Overload
refusals are not transient here: retrying them is how overload grows.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from loguru import logger

from app.bus.envelope import Envelope, module_of
from app.errors import AppError, Category
from app.metrics import metrics


class RetryBudget:
    """Retries may be at most `ratio` of the requests of the last `window` seconds, plus
    `min_per_second` that are always allowed, so a failing module is not hit by a retry storm.
    Counts live in one-second buckets: memory stays O(window) whatever the request rate."""

    def __init__(
        self,
        ratio: float,
        min_per_second: float,
        window: int = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ratio = ratio
        self._floor = min_per_second * window
        self._window = window
        self._clock = clock
        self._buckets: dict[int, list[int]] = {}  # second -> [requests, retries]
        self._second = -1
        self._current: list[int] = [0, 0]

    def record_request(self) -> None:
        """Count a request (on every command: O(1) while the second lasts)."""
        if int(self._clock()) == self._second:
            self._current[0] += 1
        else:
            self._bucket()[0] += 1

    def try_spend(self) -> bool:
        bucket = self._bucket()
        requests = sum(b[0] for b in self._buckets.values())
        retries = sum(b[1] for b in self._buckets.values())
        if retries + 1 > self._floor + self._ratio * requests:
            return False
        bucket[1] += 1
        return True

    def _bucket(self) -> list[int]:
        now = math.floor(self._clock())
        if now != self._second:
            for second in [s for s in self._buckets if s <= now - self._window]:
                del self._buckets[second]
            self._second = now
            self._current = self._buckets.setdefault(now, [0, 0])
        return self._current


class Retries:
    """When the send side retries a failed attempt, and after how long (see the module's doc)."""

    def __init__(
        self,
        *,
        base_delay: float = 1.0,
        multiplier: float = 2.0,
        max_delay: float = 30.0,
        budget_ratio: float = 0.2,
        budget_min_per_second: float = 3.0,
        clock: Callable[[], float] = time.time,
        budget_clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._base = base_delay
        self._multiplier = multiplier
        self._max_delay = max_delay
        self._budget_args = (budget_ratio, budget_min_per_second)
        self._budget_clock = budget_clock
        self._budgets: dict[str, RetryBudget] = {}
        self.clock = clock
        self.sleep = sleep
        self._rand = rand

    def delay(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max_delay, base * multiplier^(attempt-1))]."""
        ceiling = min(self._max_delay, self._base * self._multiplier ** (attempt - 1))
        return self._rand() * ceiling

    def budget(self, module: str) -> RetryBudget:
        if module not in self._budgets:
            ratio, floor = self._budget_args
            self._budgets[module] = RetryBudget(ratio, floor, clock=self._budget_clock)
        return self._budgets[module]

    def backoff(
        self, error: AppError, envelope: Envelope[Any], budget: RetryBudget
    ) -> float | None:
        """The pause before retrying `envelope`'s failed attempt, or None when it is not retried
        (logged, with the reason, when a retry was possible but refused)."""
        attempt = envelope.attempt
        if attempt >= envelope.max_attempts or not retryable(error, envelope):
            return None
        delay = self.delay(attempt)
        module = module_of(envelope.pattern)
        log = logger.bind(
            cmd=envelope.pattern,
            module=module,
            side="send",
            attempt=attempt,
            reason=error.code,
            delay_ms=round(delay * 1000, 1),
        )
        if envelope.deadline is not None and self.clock() + delay >= envelope.deadline:
            log.warning("retry skipped: it would end past the deadline")
            return None
        if not budget.try_spend():
            metrics().retry_budget_exhausted.labels(module).inc()
            log.warning("retry skipped: retry budget exhausted")
            return None
        metrics().retries.labels(module, error.code).inc()
        log.warning("retrying")
        return delay


def retryable(error: AppError, envelope: Envelope[Any]) -> bool:
    if not error.transient:
        return False
    if error.category == Category.TIMEOUT:
        return envelope.read or envelope.idempotency_key is not None
    return True
