"""The command bus: NestJS's `client.send({cmd}, payload)` as an in-process async call.

    bus.register({"cmd": "events.submit"}, SubmitEvent, submit_event)
    view = await bus.send({"cmd": "events.submit"}, SubmitEvent(event_id=...), principal=...)

`send` builds an envelope and hands it to the send side (`sender.py`: breaker, attempts under the
deadline, retries, metrics), whose end is the transport; the transport delivers the envelope to
`dispatch`, the handle side: correlation, the deadline, metrics and its log line, then the
handle-side middleware (tracing, idempotency, the transaction, injected faults) and the
handler. Errors come back as `AppError`s with a stable code and category.

The other half of NestJS's API, `client.emit(pattern, data)` with `@EventPattern`, is
`bus.emit(pattern, notification)` inside a command and `bus.on(pattern, Type, handler)`: the
notification is stored in the emitting module's outbox in the command's transaction and reaches
subscribers after commit, at least once, with exactly-once effect (`outbox.py`,
`subscribers.py`).
"""

from __future__ import annotations

import asyncio
import inspect
import time
import typing
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from loguru import logger

from app import correlation
from app.bus.breaker import Breakers
from app.bus.contracts import Command, Topic
from app.bus.envelope import (
    Envelope,
    Notification,
    Outcome,
    Pattern,
    module_of,
    new_id,
    new_message_id,
    pattern_name,
)
from app.bus.logging import DEBUG, INFO, WARNING, command_line
from app.bus.metrics import CommandMetrics
from app.bus.outbox import Outbox
from app.bus.pipeline import (
    HANDLING,
    Context,
    HandleMiddleware,
    SendMiddleware,
    applies,
    compose,
)
from app.bus.retry import Retries
from app.bus.sender import WENT_WRONG, Sender
from app.bus.subscribers import Subscriber, Subscribers, Subscription
from app.bus.timeout import Deadlines, Expired, within
from app.bus.tracing import traceparent
from app.errors import AppError, Internal, Timeout, Unavailable
from app.identity import Principal
from app.metrics import metrics

Handler = Callable[[Any, Context], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Policy:
    """How long the caller waits in total, and how many attempts it may make. Whether an attempt
    that may have run can be repeated is the command's own fact, from its registration."""

    timeout: float = 10.0
    attempts: int = 1


DEFAULT_POLICY = Policy()


@dataclass(slots=True)
class Registration:
    pattern: str
    payload_type: type[Any]
    result_type: Any
    handler: Handler
    read_only: bool
    retry_safe: bool
    """An attempt that timed out (and may have run) may be sent again."""
    chain: Callable[[Context], Awaitable[Outcome]]
    """The handle-side middleware that applies to this pattern, around its handler."""
    metrics: CommandMetrics = field(init=False)
    """The handle side's counts and latency of this pattern."""

    def __post_init__(self) -> None:
        self.metrics = CommandMetrics(self.pattern, "handle")


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
        breakers: Breakers | None = None,
        retries: Retries | None = None,
        send_middleware: Sequence[SendMiddleware] = (),
        handle_middleware: Sequence[HandleMiddleware] = (),
        handled_level: int = DEBUG,
        slow_command: float = 0.5,
        per_try: float | None = None,
    ) -> None:
        """`send_middleware` wraps the send side (tracing); `handle_middleware` runs between the
        handle side and the handler. `handled_level`: the level of the line each delivery
        writes (INFO in a worker process, whose deliveries have no request line of their own)."""
        self._registrations: dict[str, Registration] = {}
        self._breakers = breakers
        self._retries = retries
        self._send_middleware = list(send_middleware)
        self._handle_middleware = list(handle_middleware)
        self._handled_level = handled_level
        self._slow_command = slow_command
        self._per_try = per_try
        self._deadlines = Deadlines()
        self._transport: Transport | None = None
        self.accepting = True
        """False once draining: new commands are refused; in-flight ones, and their sends, run."""
        self._send: Callable[[Envelope[Any]], Awaitable[Outcome]] | None = None
        self._topics: dict[str, Topic] = {}
        self.outboxes: dict[str, Outbox] = {}
        """Each emitting module's outbox (modules that declared topics)."""
        self.subscribers: dict[str, Subscribers] = {}
        """Each subscribing module's subscriptions, inbox and dead letters."""

    def register(
        self,
        pattern: Pattern,
        payload_type: type[Any],
        handler: Handler,
        *,
        read_only: bool = False,
        retry_after_timeout: bool | None = None,
    ) -> None:
        """Register the handler of a pattern. The result type is the handler's return annotation.
        A read-only command may be sent again after a timeout unless `retry_after_timeout` says
        otherwise; a write only with an idempotency key. Modules register by their declared
        `Command`s (`handle`)."""
        name = pattern_name(pattern)
        if name in self._registrations:
            raise DuplicateRegistration(f"pattern {name!r} is already registered")
        result_type = typing.get_type_hints(inspect.unwrap(handler)).get("return", Any)
        layers = [m for m in self._handle_middleware if applies(m, name, read_only)]
        retry_safe = read_only if retry_after_timeout is None else retry_after_timeout
        self._registrations[name] = Registration(
            name,
            payload_type,
            result_type,
            handler,
            read_only,
            retry_safe,
            compose(layers, _ending(handler)),
        )

    def handle(self, command: Command, handler: Handler) -> None:
        """Register the handler of a command as its module's contracts declare it."""
        self.register(
            command.pattern,
            command.payload,
            handler,
            read_only=command.read,
            retry_after_timeout=command.retry_after_timeout,
        )

    def declare(self, topic: Topic) -> None:
        """A notification its module emits (`bus.emit`), as its contracts declare it."""
        if topic.name in self._topics:
            raise DuplicateRegistration(f"topic {topic.name!r} is already declared")
        self._topics[topic.name] = topic
        module = module_of(topic.name)
        if module not in self.outboxes:
            self.outboxes[module] = Outbox(module)

    def on(
        self, pattern: str, payload_type: type[Any], handler: Subscriber, *, module: str
    ) -> None:
        """Subscribe `module`'s `handler(notification, delivery)` to a pattern (NestJS's
        `@EventPattern`). Its effect is exactly once per notification, through the module's
        inbox; modules subscribe by the declared `Topic`s (`subscribe`)."""
        group = self.subscribers.get(module)
        if group is None:
            group = self.subscribers[module] = Subscribers(module)
        group.add(Subscription(pattern, payload_type, handler))

    def subscribe(self, topic: Topic, handler: Subscriber, *, module: str) -> None:
        self.on(topic.name, topic.payload, handler, module=module)

    async def emit(
        self, pattern: str, notification: Any, *, actor: Principal | None = None
    ) -> Notification[Any]:
        """Emit a notification from inside a command: it is stored in the module's outbox in the
        command's transaction, so it is published if and only if the command commits. It
        carries the command's correlation id and trace, and its caller as the actor unless
        `actor` names another (a sign-up's new member)."""
        context = HANDLING.get()
        if context is None or context.tx is None:
            raise RuntimeError("bus.emit runs inside a command's transaction")
        topic = self._topics.get(pattern)
        if topic is None or not isinstance(notification, topic.payload):
            raise TypeError(f"{pattern!r} is not declared with {type(notification).__name__}")
        envelope = context.envelope
        note = Notification(
            id=str(uuid.uuid4()),  # from os.urandom: stored for good, unlike a message's id
            pattern=pattern,
            payload=notification,
            occurred_at=time.time(),
            correlation_id=envelope.correlation_id,
            traceparent=traceparent() or envelope.traceparent,
            actor=actor or envelope.principal,
        )
        module = module_of(pattern)
        await self.outboxes[module].add(context.tx, note)
        context.emitted = module
        return note

    def registration(self, name: str) -> Registration:
        try:
            return self._registrations[name]
        except KeyError:
            raise UnknownPattern(f"No handler is registered for pattern {name!r}") from None

    def stop_accepting(self) -> None:
        self.accepting = False

    def connect(self, transport: Transport) -> None:
        self._transport = transport
        sender = Sender(
            transport.request,
            breakers=self._breakers,
            retries=self._retries,
            slow_command=self._slow_command,
            per_try=self._per_try,
            deadlines=self._deadlines,
        )
        self._send = compose(self._send_middleware, sender)

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
        if self._send is None:
            raise RuntimeError("the bus has no transport: call bus.connect(transport) first")
        envelope = self._envelope(
            pattern, payload, principal, idempotency_key, policy, correlation_id
        )
        outcome: Outcome = await self._send(envelope)
        return outcome.result

    async def send_for_outcome(
        self,
        pattern: Pattern,
        payload: Any,
        *,
        principal: Principal | None = None,
        idempotency_key: str | None = None,
        policy: Policy = DEFAULT_POLICY,
        correlation_id: str | None = None,
    ) -> Outcome:
        """Like `send`, but returns the whole `Outcome`: the result, and whether it was replayed
        for an idempotency key (routes that take one answer with `Idempotent-Replayed`)."""
        if self._send is None:
            raise RuntimeError("the bus has no transport: call bus.connect(transport) first")
        envelope = self._envelope(
            pattern, payload, principal, idempotency_key, policy, correlation_id
        )
        outcome: Outcome = await self._send(envelope)
        return outcome

    def _envelope(
        self,
        pattern: Pattern,
        payload: Any,
        principal: Principal | None,
        idempotency_key: str | None,
        policy: Policy,
        correlation_id: str | None,
    ) -> Envelope[Any]:
        causation_id = correlation.message_id.get()
        if not self.accepting and causation_id is None:
            raise ShuttingDown(retry_after=1.0)
        name = pattern_name(pattern)
        registration = self._registrations.get(name)
        return Envelope(
            pattern=name,
            payload=payload,
            message_id=new_message_id(),
            correlation_id=correlation_id or correlation.correlation_id.get() or new_id(),
            causation_id=causation_id,
            principal=principal,
            idempotency_key=idempotency_key,
            deadline=time.time() + policy.timeout,
            max_attempts=policy.attempts,
            read=registration is not None and registration.retry_safe,
        )

    async def dispatch(self, envelope: Envelope[Any], *, local: bool = False) -> Outcome:
        """The handle side. Only AppErrors escape. `local`: the sender waits in this task, and
        its own timer cancels the work at the deadline; otherwise the work is cancelled here at
        the envelope's deadline, so its transaction rolls back."""
        registration = self.registration(envelope.pattern)
        message = correlation.message_id.set(envelope.message_id)
        correlated = None if local else correlation.correlation_id.set(envelope.correlation_id)
        outcome = "ok"
        level = self._handled_level
        started = time.perf_counter()
        try:
            context = Context(
                envelope=envelope,
                read_only=registration.read_only,
                result_type=registration.result_type,
                local=local,
            )
            if local:  # the sender's own timer cancels the work at the deadline
                if envelope.deadline is not None and envelope.deadline <= time.time():
                    raise Timeout(
                        "The deadline passed before the work started", code="DEADLINE_EXCEEDED"
                    )
                return await registration.chain(context)
            return await self._within_deadline(registration, context)
        except AppError as error:
            outcome = error.code
            if level >= INFO and error.category in WENT_WRONG:
                level = WARNING  # a worker's own line; in process the send side reports it
            raise
        except asyncio.CancelledError:
            outcome = "CancelledError"
            raise
        except Exception:
            outcome = Internal.default_code
            logger.opt(exception=True).error("handler failed", cmd=envelope.pattern)
            raise Internal() from None
        finally:
            seconds = time.perf_counter() - started
            registration.metrics.record(outcome, seconds)
            command_line(level, "handled", envelope, "handle", outcome, seconds)
            if correlated is not None:
                correlation.correlation_id.reset(correlated)
            correlation.message_id.reset(message)

    async def _within_deadline(self, registration: Registration, context: Context) -> Outcome:
        deadline = context.envelope.deadline
        if deadline is None:
            return await registration.chain(context)
        remaining = deadline - time.time()
        if remaining <= 0:
            raise Timeout("The deadline passed before the work started", code="DEADLINE_EXCEEDED")
        try:
            return await within(self._deadlines, remaining, registration.chain(context))
        except Expired:
            metrics().timeouts.labels(context.envelope.pattern, "handle").inc()
            raise Timeout(
                "The work was cancelled at its deadline", code="DEADLINE_EXCEEDED"
            ) from None


def _ending(handler: Handler) -> Callable[[Context], Awaitable[Outcome]]:
    """The end of a pattern's chain: its handler, given the payload and the context."""

    async def run_handler(context: Context) -> Outcome:
        return Outcome(await handler(context.envelope.payload, context))

    return run_handler
