"""The command bus: NestJS's `client.send({cmd}, payload)` as an in-process async call.

    bus.register({"cmd": "events.submit"}, SubmitEvent, submit_event)
    view = await bus.send({"cmd": "events.submit"}, SubmitEvent(event_id=...), principal=...)

`send` builds an envelope and runs the send-side chain, whose end is the transport; the transport
delivers the envelope to `dispatch`, which runs the handle-side chain and the handler. Errors come
back as `AppError`s with a stable code and category.
"""

from __future__ import annotations

import inspect
import time
import typing
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from loguru import logger

from app.bus import correlation
from app.bus.envelope import Envelope, Pattern, Principal, new_id, pattern_name
from app.bus.pipeline import Context, HandleMiddleware, SendMiddleware, compose
from app.errors import AppError, Internal, Unavailable

Handler = Callable[[Any, Context], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Policy:
    """How long the caller waits in total, how many attempts it may make, and whether the command
    is a read (a read may be retried even when an attempt may already have run)."""

    timeout: float = 10.0
    attempts: int = 1
    read: bool = False


DEFAULT_POLICY = Policy()


@dataclass(frozen=True, slots=True)
class Registration:
    pattern: str
    payload_type: type[Any]
    result_type: Any
    handler: Handler
    read_only: bool


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a delivery produced: the result, and whether it was replayed from the idempotency
    store rather than computed now."""

    result: Any
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class Replayed:
    """Returned by handle-side middleware that answers from a stored outcome."""

    value: Any


class Transport(Protocol):
    async def request(self, envelope: Envelope[Any]) -> Outcome: ...


class UnknownPattern(Internal):
    default_code = "UNKNOWN_PATTERN"


class DuplicateRegistration(RuntimeError):
    pass


class ShuttingDown(Unavailable):
    default_code = "SHUTTING_DOWN"
    default_message = "The service is shutting down; try again shortly"


class Bus:
    def __init__(
        self,
        *,
        send_middleware: Sequence[SendMiddleware] = (),
        handle_middleware: Sequence[HandleMiddleware] = (),
    ) -> None:
        self._registrations: dict[str, Registration] = {}
        self._send_middleware = list(send_middleware)
        self._handle = compose(list(handle_middleware), self._call_handler)
        self._transport: Transport | None = None
        self.accepting = True
        """False once draining: new commands are refused; in-flight ones, and their sends, run."""
        self._send: Callable[[Envelope[Any]], Awaitable[Outcome]] | None = None

    def register(
        self,
        pattern: Pattern,
        payload_type: type[Any],
        handler: Handler,
        *,
        read_only: bool = False,
    ) -> None:
        """Register the handler of a pattern. The result type is the handler's return annotation."""
        name = pattern_name(pattern)
        if name in self._registrations:
            raise DuplicateRegistration(f"pattern {name!r} is already registered")
        result_type = typing.get_type_hints(inspect.unwrap(handler)).get("return", Any)
        self._registrations[name] = Registration(
            name, payload_type, result_type, handler, read_only
        )

    def registration(self, name: str) -> Registration:
        try:
            return self._registrations[name]
        except KeyError:
            raise UnknownPattern(f"No handler is registered for pattern {name!r}") from None

    def stop_accepting(self) -> None:
        self.accepting = False

    def connect(self, transport: Transport) -> None:
        self._transport = transport
        self._send = compose(self._send_middleware, transport.request)

    async def send(
        self,
        pattern: Pattern,
        payload: Any,
        *,
        principal: Principal | None = None,
        idempotency_key: str | None = None,
        policy: Policy = DEFAULT_POLICY,
        correlation_id: str | None = None,
    ) -> Any:
        """Send a command and return its result (errors are raised as AppErrors)."""
        outcome = await self.call(
            pattern,
            payload,
            principal=principal,
            idempotency_key=idempotency_key,
            policy=policy,
            correlation_id=correlation_id,
        )
        return outcome.result

    async def call(
        self,
        pattern: Pattern,
        payload: Any,
        *,
        principal: Principal | None = None,
        idempotency_key: str | None = None,
        policy: Policy = DEFAULT_POLICY,
        correlation_id: str | None = None,
    ) -> Outcome:
        """Like `send`, but also tells whether the outcome was replayed for an idempotency key."""
        if self._send is None:
            raise RuntimeError("the bus has no transport: call bus.connect(transport) first")
        causation_id = correlation.message_id.get()
        if not self.accepting and causation_id is None:
            raise ShuttingDown(retry_after=1.0)
        envelope = Envelope(
            pattern=pattern_name(pattern),
            payload=payload,
            message_id=new_id(),
            correlation_id=correlation_id or correlation.correlation_id.get() or new_id(),
            causation_id=causation_id,
            principal=principal,
            idempotency_key=idempotency_key,
            deadline=time.time() + policy.timeout,
            max_attempts=policy.attempts,
            read=policy.read,
        )
        outcome: Outcome = await self._send(envelope)
        return outcome

    async def dispatch(self, envelope: Envelope[Any], *, local: bool = False) -> Outcome:
        """Handle side: run the handle chain and the handler. Only AppErrors escape. `local`:
        the sender waits in this process (and cancels the work at its deadline itself)."""
        registration = self.registration(envelope.pattern)
        context = Context(
            envelope=envelope,
            read_only=registration.read_only,
            result_type=registration.result_type,
            local=local,
        )
        try:
            result = await self._handle(context)
            if isinstance(result, Replayed):
                return Outcome(result.value, replayed=True)
            return Outcome(result)
        except AppError:
            raise
        except Exception:
            logger.bind(cmd=envelope.pattern).exception("handler failed")
            raise Internal() from None

    async def _call_handler(self, context: Context) -> Any:
        registration = self._registrations[context.envelope.pattern]
        return await registration.handler(context.envelope.payload, context)
