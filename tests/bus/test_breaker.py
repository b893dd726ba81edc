"""The circuit breaker's state machine, on a fake clock."""

from __future__ import annotations

from typing import Any

import pytest

from app.bus.breaker import CLOSED, HALF_OPEN, OPEN, Breakers, CircuitOpen
from app.bus.envelope import Envelope
from app.bus.sender import Sender
from app.errors import Conflict, Overloaded, Unavailable


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def envelope(pattern: str = "events.findOne") -> Envelope[Any]:
    return Envelope(pattern=pattern, payload=None, message_id="m", correlation_id="c")


def breaker_with(clock: Clock, **overrides: Any) -> Breakers:
    config: dict[str, Any] = {
        "window": 4,
        "min_calls": 4,
        "failure_rate": 0.5,
        "slow_call": 1.0,
        "open_seconds": 10.0,
        "half_open_probes": 2,
    }
    config.update(overrides)
    return Breakers(clock=clock, **config)


async def fails(_: Envelope[Any]) -> Any:
    raise Unavailable("down")


async def works(_: Envelope[Any]) -> str:
    return "ok"


async def call(breaker: Breakers, target: Any, pattern: str = "events.findOne") -> str:
    """One command through the send side, with these breakers, delivered to `target`."""
    try:
        return str(await Sender(target, breakers=breaker)(envelope(pattern)))
    except CircuitOpen:
        return "open"
    except Unavailable:
        return "failed"
    except (Conflict, Overloaded):
        return "refused"


async def test_opens_at_the_failure_rate_once_the_window_has_enough_calls():
    breaker = breaker_with(Clock())

    results = [await call(breaker, t) for t in (works, fails, works, fails)]

    assert results == ["ok", "failed", "ok", "failed"]
    assert breaker.breaker("events.findOne").state == OPEN


async def test_fewer_calls_than_the_minimum_never_open_it():
    breaker = breaker_with(Clock(), min_calls=10, window=10)

    for _ in range(9):
        await call(breaker, fails)

    assert breaker.breaker("events.findOne").state == CLOSED


async def test_open_fails_fast_with_retry_after_and_without_calling():
    clock = Clock()
    breaker = breaker_with(clock)
    for _ in range(4):
        await call(breaker, fails)
    reached: list[int] = []

    async def counted(_: Envelope[Any]) -> Any:
        reached.append(1)
        return "ok"

    clock.now += 4
    with pytest.raises(CircuitOpen) as raised:
        await Sender(counted, breakers=breaker)(envelope())

    assert reached == []
    assert raised.value.code == "CIRCUIT_OPEN"
    assert raised.value.retry_after == pytest.approx(6.0)


async def test_half_open_probes_then_closes_after_enough_successes():
    clock = Clock()
    breaker = breaker_with(clock)
    for _ in range(4):
        await call(breaker, fails)

    clock.now += 10
    assert await call(breaker, works) == "ok"
    assert breaker.breaker("events.findOne").state == HALF_OPEN
    assert await call(breaker, works) == "ok"
    assert breaker.breaker("events.findOne").state == CLOSED


async def test_a_failed_probe_opens_it_again():
    clock = Clock()
    breaker = breaker_with(clock)
    for _ in range(4):
        await call(breaker, fails)

    clock.now += 10
    assert await call(breaker, fails) == "failed"

    assert breaker.breaker("events.findOne").state == OPEN
    assert await call(breaker, works) == "open"


async def test_half_open_admits_a_bounded_number_of_probes_at_once():
    clock = Clock()
    breaker = breaker_with(clock, half_open_probes=1)
    for _ in range(4):
        await call(breaker, fails)
    clock.now += 10
    circuit = breaker.breaker("events.findOne")

    assert circuit.acquire() is True  # the one probe in flight
    with pytest.raises(CircuitOpen):
        circuit.acquire()
    circuit.release(True, False)
    assert circuit.state == CLOSED


async def test_calls_from_before_the_opening_do_not_decide_the_half_open_state():
    """A straggler (admitted while closed, still running when the breaker opened) that ends
    while the breaker is half-open neither re-opens it by failing nor counts as a probe."""
    clock = Clock()
    breaker = breaker_with(clock)
    circuit = breaker.breaker("events.findOne")
    stragglers = [circuit.acquire() for _ in range(2)]  # admitted while closed: not probes
    for _ in range(4):
        await call(breaker, fails)
    clock.now += 10
    assert await call(breaker, works) == "ok"  # the first probe
    assert circuit.state == HALF_OPEN

    circuit.release(stragglers[0], True)  # it timed out at last
    assert circuit.state == HALF_OPEN
    circuit.release(stragglers[1], False)
    assert circuit.state == HALF_OPEN  # still waiting for its second probe
    assert await call(breaker, works) == "ok"
    assert circuit.state == CLOSED


async def test_slow_calls_count_as_failures():
    clock = Clock()
    breaker = breaker_with(clock)

    async def slow(_: Envelope[Any]) -> str:
        clock.now += 2.0  # over slow_call
        return "ok"

    for _ in range(4):
        assert await call(breaker, slow) == "ok"

    assert breaker.breaker("events.findOne").state == OPEN


async def test_domain_refusals_are_not_failures():
    breaker = breaker_with(Clock())

    async def refuses(_: Envelope[Any]) -> str:
        raise Conflict("no")

    for _ in range(8):
        assert await call(breaker, refuses) == "refused"

    assert breaker.breaker("events.findOne").state == CLOSED


async def test_overload_refusals_are_not_failures():
    """A fast, deliberate refusal (admission control shedding a login flood) says the process
    is busy, not that the dependency is broken: it must not cut every other caller off."""
    breaker = breaker_with(Clock())

    async def sheds(_: Envelope[Any]) -> str:
        raise Overloaded("busy", retry_after=1.0)

    for _ in range(8):
        assert await call(breaker, sheds, "auth.login") == "refused"

    assert breaker.breaker("auth.login").state == CLOSED


async def test_one_failing_command_does_not_cut_off_the_modules_other_commands():
    breaker = breaker_with(Clock())
    for _ in range(4):
        await call(breaker, fails, "auth.login")

    assert await call(breaker, works, "auth.login") == "open"
    assert await call(breaker, works, "auth.getMe") == "ok"
    assert breaker.breaker("auth.getMe").state == CLOSED
