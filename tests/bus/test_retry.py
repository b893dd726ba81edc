"""Retries on the send side: which errors, how often, how long, and never past the deadline.

Time is simulated: the retry policy gets a fake clock, a recording sleep and a fixed random
source; the send side (`Sender`) delivers to a flaky target instead of a transport.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from loguru import logger

from app.bus.envelope import Envelope
from app.bus.retry import Retries, RetryBudget
from app.bus.sender import Sender
from app.errors import AppError, Conflict, Timeout, Unavailable


class FakeTime:
    def __init__(self) -> None:
        self.now = 1_000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def sender(time: FakeTime, target: Any, rand: float = 1.0, **kwargs: Any) -> Any:
    """The send side, retrying with this policy, delivering to `target`."""
    options: dict[str, Any] = {"base_delay": 1.0, "multiplier": 2.0, "max_delay": 30.0}
    options.update(kwargs)
    retries = Retries(
        clock=time.clock, budget_clock=time.clock, sleep=time.sleep, rand=lambda: rand, **options
    )
    return Sender(target, retries=retries)


def envelope(
    *, attempts: int = 3, read: bool = False, key: str | None = None, timeout: float = 10.0
) -> Envelope[Any]:
    return Envelope(
        pattern="events.findOne",
        payload=None,
        message_id="m-1",
        correlation_id="corr-retry",
        idempotency_key=key,
        deadline=1_000.0 + timeout,
        max_attempts=attempts,
        read=read,
    )


class Flaky:
    """Fails with `error` the first `failures` times, then answers "ok"."""

    def __init__(self, failures: int, error: AppError | BaseException) -> None:
        self.failures = failures
        self.error = error
        self.attempts: list[int] = []

    async def __call__(self, sent: Envelope[Any]) -> str:
        self.attempts.append(sent.attempt)
        if len(self.attempts) <= self.failures:
            raise self.error
        return "ok"


async def test_two_transient_failures_on_a_read_recover_with_growing_delays():
    time = FakeTime()
    target = Flaky(2, Unavailable("down"))

    result = await sender(time, target)(envelope(read=True))

    assert result == "ok"
    assert target.attempts == [1, 2, 3]
    assert time.sleeps == [1.0, 2.0]


async def test_delays_use_full_jitter_below_the_exponential_ceiling():
    time = FakeTime()
    target = Flaky(3, Unavailable("down"))

    await sender(time, target, rand=0.25, max_delay=3.0)(envelope(attempts=4, read=True))

    assert time.sleeps == [0.25, 0.5, 0.75]  # 0.25 x ceilings 1, 2, then 4 capped at 3


async def test_retries_stop_before_a_delay_would_end_past_the_deadline():
    time = FakeTime()
    target = Flaky(5, Unavailable("down"))

    with pytest.raises(Unavailable):
        await sender(time, target)(envelope(attempts=6, read=True, timeout=3.5))

    assert time.sleeps == [1.0, 2.0]  # the next, 4.0 s, would end past the 3.5 s deadline
    assert time.now <= 1_000.0 + 3.5


async def test_a_write_that_may_have_run_is_not_retried_without_a_key():
    time = FakeTime()
    target = Flaky(1, Timeout("slow"))

    with pytest.raises(Timeout):
        await sender(time, target)(envelope(attempts=3))

    assert target.attempts == [1]


@pytest.mark.parametrize(("read", "key"), [(True, None), (False, "key-1")])
async def test_a_timeout_is_retried_for_reads_and_keyed_writes(read, key):
    target = Flaky(1, Timeout("slow"))

    assert await sender(FakeTime(), target)(envelope(read=read, key=key)) == "ok"
    assert target.attempts == [1, 2]


async def test_a_write_that_never_started_is_retried():
    target = Flaky(1, Unavailable("no handler reached"))

    assert await sender(FakeTime(), target)(envelope(read=False)) == "ok"
    assert target.attempts == [1, 2]


async def test_domain_errors_are_not_retried():
    target = Flaky(1, Conflict("nope"))

    with pytest.raises(Conflict):
        await sender(FakeTime(), target)(envelope(read=True))
    assert target.attempts == [1]


async def test_cancellation_is_never_retried():
    target = Flaky(1, asyncio.CancelledError())

    with pytest.raises(asyncio.CancelledError):
        await sender(FakeTime(), target)(envelope(read=True))
    assert target.attempts == [1]


async def test_the_last_errors_retry_after_hint_reaches_the_caller():
    time = FakeTime()
    target = Flaky(5, Unavailable("busy", retry_after=3))

    with pytest.raises(Unavailable) as raised:
        await sender(time, target, rand=0.1)(envelope(read=True))

    assert time.sleeps == [0.1, 0.2]  # the bus's own backoff
    assert raised.value.retry_after == 3


async def test_the_budget_caps_retries_under_a_failure_storm():
    time = FakeTime()
    target = Flaky(10_000, Unavailable("down"))
    retrying = sender(time, target, rand=0.0, budget_ratio=0.2, budget_min_per_second=3.0)

    for _ in range(200):
        with pytest.raises(Unavailable):
            await retrying(envelope(attempts=3, read=True))

    retries = len(target.attempts) - 200
    # all in the same simulated second: 3/s x 10 s floor + 20% of 200 requests
    assert retries == 30 + 40
    assert retries < 200 * 2  # without the budget every request would retry twice


def test_the_budget_window_slides():
    time = FakeTime()
    budget = RetryBudget(ratio=0.0, min_per_second=0.1, window=10, clock=time.clock)

    assert budget.try_spend()  # floor: 0.1/s x 10 s = 1 retry per window
    assert not budget.try_spend()
    time.now += 10
    assert budget.try_spend()


async def test_every_retry_is_logged_with_correlation_attempt_and_delay():
    records: list[dict[str, Any]] = []
    sink = logger.add(lambda m: records.append(m.record["extra"] | {"msg": m.record["message"]}))
    try:
        with logger.contextualize(correlation_id="corr-retry"):
            await sender(FakeTime(), Flaky(2, Unavailable("down")))(envelope(read=True))
    finally:
        logger.remove(sink)

    retries = [r for r in records if r["msg"] == "retrying"]
    assert [(r["attempt"], r["delay_ms"]) for r in retries] == [(1, 1000.0), (2, 2000.0)]
    assert {r["correlation_id"] for r in retries} == {"corr-retry"}
    assert {r["reason"] for r in retries} == {"SERVICE_UNAVAILABLE"}
