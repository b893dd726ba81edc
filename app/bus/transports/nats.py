"""The bus over NATS request/reply: the same envelope, msgspec on the wire, errors as data.

Send side (`NatsTransport`): a command goes to subject `cmd.<pattern>` (`cmd.events.submit`), its
envelope metadata in headers, the MessagePack payload as body, and waits for the reply at most
the remaining deadline. No worker listening is `Unavailable` NO_RESPONDERS: the command never
started, so the send side may retry it and answers 503 when attempts run out, at once rather than
at the deadline. The client reconnects by itself after a NATS restart.

Handle side (`serve_module`): a worker subscribes to `cmd.<module>.>` in the queue group
`<module>`, so N workers share the load; each message runs in a task of its own through the bus's
handle chain (deadline, transaction, idempotency...), and the reply carries the result or the
error's data. Draining stops taking messages and waits for those in flight.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import msgspec
import nats
from loguru import logger
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from app.bus import codec
from app.bus.envelope import Outcome, module_of
from app.errors import AppError, Invalid, Timeout, Unavailable

if TYPE_CHECKING:
    from app.bus.bus import Bus
    from app.bus.envelope import Envelope

SUBJECT_PREFIX = "cmd."


async def connect(url: str, name: str) -> Client:
    """A client that never gives up reconnecting (a NATS restart is survived in place)."""

    closing: list[Client] = []

    async def disconnected() -> None:
        if not (closing and closing[0].is_closed):
            logger.bind(nats=url).warning("NATS disconnected; reconnecting")

    async def reconnected() -> None:
        logger.bind(nats=url).info("NATS reconnected")

    client = await nats.connect(
        servers=url.split(","),
        name=name,
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.25,
        connect_timeout=2,
        disconnected_cb=disconnected,
        reconnected_cb=reconnected,
    )
    closing.append(client)
    return client


class NoWorker(Unavailable):
    default_code = "NO_RESPONDERS"


class NatsTransport:
    def __init__(self, bus: Bus, url: str, name: str) -> None:
        self._bus = bus
        self._url = url
        self._name = name
        self._client: Client | None = None

    async def open(self) -> None:
        self._client = await connect(self._url, self._name)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

    @property
    def connected(self) -> bool:
        return self._client is not None and bool(self._client.is_connected)

    async def request(self, envelope: Envelope[Any]) -> Outcome:
        registration = self._bus.registration(envelope.pattern)
        if self._client is None:
            raise Unavailable("The message bus is not connected", code="BUS_UNAVAILABLE")
        module = module_of(envelope.pattern)
        remaining = (envelope.deadline - time.time()) if envelope.deadline is not None else 10.0
        if remaining <= 0:
            raise Timeout(f"The {module} module did not answer in time")
        try:
            reply = await self._client.request(
                SUBJECT_PREFIX + envelope.pattern,
                msgspec.msgpack.encode(envelope.payload),
                timeout=remaining,
                headers=codec.envelope_headers(envelope),
            )
        except nats.errors.NoRespondersError:
            raise NoWorker(f"No {module} worker is available", retry_after=1.0) from None
        except nats.errors.TimeoutError:
            raise Timeout(f"The {module} module did not answer in time") from None
        except (nats.errors.ConnectionClosedError, nats.errors.ConnectionReconnectingError):
            raise Unavailable(
                "The message bus is reconnecting", code="BUS_UNAVAILABLE", retry_after=1.0
            ) from None
        except nats.errors.Error as exc:  # any other client-side failure: transient, not a 500
            logger.bind(cmd=envelope.pattern, error=type(exc).__name__).warning(
                "NATS request failed"
            )
            raise Unavailable(
                "The message bus is unavailable", code="BUS_UNAVAILABLE", retry_after=1.0
            ) from None
        return codec.decode_reply(reply.data, registration.result_type)


class RoutingTransport:
    """Commands of local modules stay in process; the others go over NATS."""

    def __init__(self, local: Any, remote: NatsTransport, local_modules: frozenset[str]) -> None:
        self._local = local
        self._remote = remote
        self._local_modules = local_modules

    async def request(self, envelope: Envelope[Any]) -> Outcome:
        if module_of(envelope.pattern) in self._local_modules:
            outcome: Outcome = await self._local.request(envelope)
            return outcome
        return await self._remote.request(envelope)

    async def drain(self, grace: float) -> None:
        await self._local.drain(grace)


class ModuleServer:
    """A module's commands served from NATS (see `serve_module`)."""

    def __init__(self, bus: Bus, client: Client, module: str) -> None:
        self._bus = bus
        self._client = client
        self.module = module
        self._subscription: Subscription | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._subscription = await self._client.subscribe(
            f"{SUBJECT_PREFIX}{self.module}.>", queue=self.module, cb=self._received
        )
        await self._client.flush()
        logger.bind(module=self.module).info("serving module over NATS")

    async def _received(self, message: Msg) -> None:
        task = asyncio.create_task(self._handle(message))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _handle(self, message: Msg) -> None:
        pattern = message.subject.removeprefix(SUBJECT_PREFIX)
        try:
            registration = self._bus.registration(pattern)
            envelope = codec.envelope_from_message(
                pattern, message.headers or {}, message.data, registration.payload_type
            )
        except (
            AppError,
            KeyError,
            ValueError,
            msgspec.ValidationError,
            msgspec.DecodeError,
        ) as exc:
            error = exc if isinstance(exc, AppError) else Invalid(f"Malformed command: {exc}")
            await message.respond(codec.encode_error(error))
            return
        try:
            outcome = await self._bus.dispatch(envelope)
            reply = codec.encode_outcome(outcome)
        except AppError as error:
            reply = codec.encode_error(error)
        try:
            await message.respond(reply)
        except nats.errors.Error:
            logger.bind(cmd=pattern).warning("reply lost: NATS unavailable")

    async def drain(self, grace: float) -> None:
        """Stop taking commands, let those in flight finish (within `grace` seconds)."""
        if self._subscription is not None:
            await self._subscription.unsubscribe()
            self._subscription = None
        if self._running:
            _, pending = await asyncio.wait(set(self._running), timeout=grace)
            for task in pending:
                task.cancel()
