"""The command bus: registration, dispatch, middleware order, errors as data, correlation."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from app import correlation
from app.bus.bus import Bus, DuplicateRegistration, UnknownPattern
from app.bus.contracts import Command
from app.bus.envelope import Envelope
from app.bus.pipeline import Context
from app.bus.transports.local import LocalTransport
from app.bus.transports.wire import WireRoundTripTransport
from app.errors import AppError, Category, Conflict, FieldError, Internal, Invalid
from app.identity import Principal, Role


class Greet(msgspec.Struct, frozen=True, kw_only=True):
    name: str


class Greeting(msgspec.Struct, frozen=True, kw_only=True):
    text: str
    correlation_id: str
    causation_id: str | None


class NameTaken(Conflict):
    default_code = "NAME_TAKEN"


async def greet(cmd: Greet, context: Context) -> Greeting:
    if cmd.name == "taken":
        raise NameTaken("That name is taken", errors=(FieldError(field="name", message="taken"),))
    if cmd.name == "boom":
        raise RuntimeError("secret internals: /srv/db password=hunter2")
    return Greeting(
        text=f"hello {cmd.name}",
        correlation_id=context.envelope.correlation_id,
        causation_id=context.envelope.causation_id,
    )


def make_bus(wire: bool = True, **kwargs: Any) -> Bus:
    bus = Bus(**kwargs)
    bus.register({"cmd": "greet.hello"}, Greet, greet)
    bus.connect(WireRoundTripTransport(bus) if wire else LocalTransport(bus))
    return bus


@pytest.mark.parametrize("wire", [True, False], ids=["wire", "local"])
async def test_send_returns_the_handlers_result(wire):
    result = await make_bus(wire).send({"cmd": "greet.hello"}, Greet(name="ada"))

    assert isinstance(result, Greeting)
    assert result.text == "hello ada"


async def test_unknown_pattern_fails_fast():
    with pytest.raises(UnknownPattern) as raised:
        await make_bus().send({"cmd": "greet.nobody"}, Greet(name="x"))
    assert "greet.nobody" in raised.value.message


def test_registering_a_pattern_twice_fails():
    bus = make_bus()
    with pytest.raises(DuplicateRegistration):
        bus.register({"cmd": "greet.hello"}, Greet, greet)


@pytest.mark.parametrize("pattern", [{}, {"cmd": ""}, {"event": "x"}, {"cmd": "a", "x": "b"}])
def test_malformed_patterns_are_refused(pattern):
    with pytest.raises(ValueError, match="cmd"):
        Bus().register(pattern, Greet, greet)


@pytest.mark.parametrize("wire", [True, False], ids=["wire", "local"])
async def test_domain_errors_come_back_with_code_category_and_fields(wire):
    with pytest.raises(AppError) as raised:
        await make_bus(wire).send({"cmd": "greet.hello"}, Greet(name="taken"))

    error = raised.value
    assert error.category == Category.CONFLICT
    assert error.code == "NAME_TAKEN"
    assert error.message == "That name is taken"
    assert error.errors == (FieldError(field="name", message="taken"),)


async def test_unexpected_exceptions_become_internal_errors_without_details():
    with pytest.raises(Internal) as raised:
        await make_bus().send({"cmd": "greet.hello"}, Greet(name="boom"))

    assert "hunter2" not in raised.value.message
    assert raised.value.code == "INTERNAL_ERROR"


async def test_wire_transport_refuses_results_that_cannot_cross_a_process():
    class NotAStruct:
        pass

    async def leaky(cmd: Greet, context: Context) -> Greeting:
        return NotAStruct()  # type: ignore[return-value]

    bus = Bus()
    bus.register({"cmd": "greet.leaky"}, Greet, leaky)
    bus.connect(WireRoundTripTransport(bus))

    with pytest.raises(TypeError):
        await bus.send({"cmd": "greet.leaky"}, Greet(name="x"))


class Strict(msgspec.Struct, frozen=True):
    count: int


async def test_wire_transport_refuses_payloads_that_break_their_contract():
    async def count(cmd: Strict, context: Context) -> int:
        return cmd.count

    bus = Bus()
    bus.register({"cmd": "greet.count"}, Strict, count)
    bus.connect(WireRoundTripTransport(bus))

    assert await bus.send({"cmd": "greet.count"}, Strict(count=3)) == 3
    with pytest.raises(Internal):
        await bus.send({"cmd": "greet.count"}, Greet(name="not a Strict"))


async def test_middleware_runs_in_order_on_each_side():
    calls: list[str] = []

    def layer(name: str) -> Any:
        async def middleware(message: Any, call_next: Any) -> Any:
            calls.append(f"{name}>")
            result = await call_next(message)
            calls.append(f"<{name}")
            return result

        return middleware

    bus = make_bus(
        send_middleware=[layer("s1"), layer("s2")], handle_middleware=[layer("h1"), layer("h2")]
    )
    await bus.send({"cmd": "greet.hello"}, Greet(name="x"))

    assert calls == ["s1>", "s2>", "h1>", "h2>", "<h2", "<h1", "<s2", "<s1"]


async def test_envelope_carries_principal_key_deadline_and_correlation():
    seen: list[Envelope[Any]] = []

    async def capture(envelope: Envelope[Any], call_next: Any) -> Any:
        seen.append(envelope)
        return await call_next(envelope)

    bus = make_bus(send_middleware=[capture])
    principal = Principal(user_id="u", organization_id="o", role=Role.ADMIN, email="u@o.io")
    token = correlation.correlation_id.set("req-123")
    try:
        result = await bus.send(
            {"cmd": "greet.hello"}, Greet(name="x"), principal=principal, idempotency_key="k-1"
        )
    finally:
        correlation.correlation_id.reset(token)

    envelope = seen[0]
    assert envelope.pattern == "greet.hello"
    assert envelope.principal == principal
    assert envelope.idempotency_key == "k-1"
    assert envelope.correlation_id == "req-123" == result.correlation_id
    assert envelope.deadline is not None
    assert envelope.causation_id is None


async def test_nested_send_keeps_correlation_and_names_its_cause():
    bus = Bus()
    bus.register({"cmd": "greet.hello"}, Greet, greet)
    outer_ids: list[str] = []

    async def outer(cmd: Greet, context: Context) -> Greeting:
        outer_ids.append(context.envelope.message_id)
        inner: Greeting = await bus.send({"cmd": "greet.hello"}, cmd)
        return inner

    bus.register({"cmd": "greet.outer"}, Greet, outer)
    bus.connect(WireRoundTripTransport(bus))

    result = await bus.send({"cmd": "greet.outer"}, Greet(name="x"), correlation_id="corr-9")

    assert result.correlation_id == "corr-9"
    assert result.causation_id == outer_ids[0]


async def test_a_bus_without_transport_says_so():
    bus = Bus()
    bus.register({"cmd": "greet.hello"}, Greet, greet)
    with pytest.raises(RuntimeError, match="transport"):
        await bus.send({"cmd": "greet.hello"}, Greet(name="x"))


def test_error_data_round_trip_keeps_category_and_retry_hint():
    original = Invalid("bad", errors=(FieldError(field="f", message="m"),), retry_after=None)
    rebuilt = AppError.from_data(
        msgspec.msgpack.decode(
            msgspec.msgpack.encode(original.to_data()), type=type(original.to_data())
        )
    )

    assert type(rebuilt) is Invalid
    assert rebuilt.to_data() == original.to_data()


async def test_handle_middleware_that_applies_to_some_patterns_runs_only_for_them():
    calls: list[str] = []

    class OnlyWrites:
        def applies_to(self, pattern: str, read_only: bool) -> bool:
            return not read_only

        async def __call__(self, context: Context, call_next: Any) -> Any:
            calls.append(context.envelope.pattern)
            return await call_next(context)

    bus = Bus(handle_middleware=[OnlyWrites()])
    bus.register({"cmd": "greet.hello"}, Greet, greet)
    bus.register({"cmd": "greet.read"}, Greet, greet, read_only=True)
    bus.connect(LocalTransport(bus))
    await bus.send({"cmd": "greet.read"}, Greet(name="r"))
    await bus.send({"cmd": "greet.hello"}, Greet(name="w"))

    assert calls == ["greet.hello"]


@pytest.mark.parametrize(
    ("command", "retry_safe"),
    [
        (Command("greet.write", Greet), False),
        (Command("greet.read", Greet, read=True), True),
        (Command("greet.login", Greet, read=True, retry_after_timeout=False), False),
    ],
)
async def test_whether_a_timed_out_attempt_may_be_repeated_is_the_commands_declaration(
    command: Command, retry_safe: bool
):
    """The sender does not say it (a route could say it wrongly): the declaration the module
    registered by does, and the envelope carries it to the retry logic."""
    seen: list[Envelope[Any]] = []

    async def record(cmd: Greet, context: Context) -> Greeting:
        seen.append(context.envelope)
        return await greet(cmd, context)

    bus = Bus()
    bus.handle(command, record)
    bus.connect(LocalTransport(bus))

    await bus.send(command.pattern, Greet(name="ada"))

    assert seen[0].read is retry_safe
