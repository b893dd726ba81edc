"""A circuit breaker per command pattern, on the send side (outside retries).

Scope: one breaker per pattern (`events.findOne`, `auth.login`), the common choice: a command
type that fails (a broken query, a dependency only it uses) is cut off without blocking the
module's other commands, and a module that is down as a whole opens each of its patterns' breakers
after their own few calls. Overload is not failure: a deliberate, fast refusal (`Overloaded`, such
as bcrypt's admission control refusing a login flood) says this process is busy, not that the
dependency is broken, so it never opens a breaker and never cuts off other users.

Closed: calls pass; their outcomes fill a sliding window of the last `window` calls. Once it
holds at least `min_calls`, a failure rate at or above `failure_rate` opens the breaker.
Failures are transient errors (unavailable, timeout), internal errors and calls slower than
`slow_call` seconds; domain refusals and overload refusals are not failures. Open: calls fail
at once with 503 `CIRCUIT_OPEN` and Retry-After, for `open_seconds`. Half-open: up to
`half_open_probes` calls probe the pattern; one failure opens it again, that many successes
close it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

from loguru import logger

from app.bus.envelope import module_of
from app.errors import AppError, Category, Unavailable
from app.metrics import BREAKER_STATE_VALUES, metrics

CLOSED, HALF_OPEN, OPEN = "closed", "half_open", "open"
_FAILURES = frozenset({Category.UNAVAILABLE, Category.TIMEOUT, Category.INTERNAL})


class CircuitOpen(Unavailable):
    default_code = "CIRCUIT_OPEN"


class CircuitBreaker:
    def __init__(
        self,
        pattern: str,
        *,
        window: int = 20,
        min_calls: int = 10,
        failure_rate: float = 0.5,
        slow_call: float = 5.0,
        open_seconds: float = 10.0,
        half_open_probes: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pattern = pattern
        self.slow_call = slow_call
        self.clock = clock
        self._min_calls = min_calls
        self._failure_rate = failure_rate
        self._open_seconds = open_seconds
        self._probes = half_open_probes
        self._clock = clock
        self._outcomes: deque[bool] = deque(maxlen=window)  # True = failed
        self._failures = 0
        """How many of `_outcomes` are failures (kept as they come and go, not summed)."""
        self.state = CLOSED
        self._opened_at = 0.0
        self._probing = 0
        self._probe_successes = 0
        metrics().breaker_state.labels(pattern).set(BREAKER_STATE_VALUES[CLOSED])

    def acquire(self) -> bool:
        """Let a call through (True when it is a half-open probe), or raise CircuitOpen."""
        if self.state == OPEN:
            remaining = self._opened_at + self._open_seconds - self._clock()
            if remaining > 0:
                raise CircuitOpen(
                    f"The {module_of(self.pattern)} module is failing; calls are paused",
                    retry_after=max(1.0, remaining),
                )
            self._move(HALF_OPEN)
        if self.state == HALF_OPEN:
            if self._probing >= self._probes:
                raise CircuitOpen(
                    f"The {module_of(self.pattern)} module is being probed; calls are paused",
                    retry_after=1.0,
                )
            self._probing += 1
            return True
        return False

    def release(self, probe: bool, failed: bool | None) -> None:
        """Record a call's outcome (None: the caller gave up; nothing is learned)."""
        if probe:
            self._probing -= 1
        if failed is None or (probe and self.state != HALF_OPEN):
            return
        if self.state == HALF_OPEN and not probe:
            return  # admitted before the breaker opened: only the probes speak for now
        if self.state == HALF_OPEN:
            if failed:
                self._open()
                return
            self._probe_successes += 1
            if self._probe_successes >= self._probes:
                self._outcomes.clear()
                self._failures = 0
                self._move(CLOSED)
            return
        outcomes = self._outcomes
        if len(outcomes) == outcomes.maxlen and outcomes[0]:
            self._failures -= 1  # about to drop out of the window
        outcomes.append(failed)
        if failed:
            self._failures += 1
        if (
            self._failures
            and len(outcomes) >= self._min_calls
            and self._failures / len(outcomes) >= self._failure_rate
        ):
            self._open()

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._outcomes.clear()
        self._failures = 0
        self._move(OPEN)

    def _move(self, state: str) -> None:
        previous, self.state = self.state, state
        self._probe_successes = 0
        recorded = metrics()
        recorded.breaker_state.labels(self.pattern).set(BREAKER_STATE_VALUES[state])
        recorded.breaker_transitions.labels(self.pattern, state).inc()
        log = logger.bind(cmd=self.pattern, previous=previous, state=state)
        (log.warning if state == OPEN else log.info)("circuit breaker {}", state.replace("_", "-"))


class Breakers:
    """The breakers of a bus's send side, one per pattern, made on first use."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, **config: Any) -> None:
        self._config = config
        self._clock = clock
        self.breakers: dict[str, CircuitBreaker] = {}

    def breaker(self, pattern: str) -> CircuitBreaker:
        if pattern not in self.breakers:
            self.breakers[pattern] = CircuitBreaker(pattern, clock=self._clock, **self._config)
        return self.breakers[pattern]

    def states(self) -> dict[str, str]:
        return {pattern: breaker.state for pattern, breaker in self.breakers.items()}


def failed(error: Exception) -> bool:
    """Whether a call that raised `error` counts as a failure of its dependency: transient and
    internal errors do; domain and overload refusals do not, nor a refusal that is already fast
    and final (no worker runs the module: an open breaker would only delay its return); anything
    unexpected does."""
    if isinstance(error, AppError):
        if error.category == Category.UNAVAILABLE and not error.transient:
            return False
        return error.category in _FAILURES
    return True
