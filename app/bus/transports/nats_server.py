"""The handle side of the bus over NATS (NestJS's NATS server): a worker subscribes to
`<prefix>.cmd.<module>.>` in the queue group `<prefix>.<module>`, so N workers share the load;
each message runs in a task of its own through the bus's handle chain (deadline, tracing,
idempotency, transaction...), and the reply carries the outcome or the error's data. Draining
stops taking messages and waits for those in flight. The send side is `nats_client.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import msgspec
import nats
from loguru import logger
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from app.bus import codec
from app.bus.transports.nats_connection import PRESENT, Subjects
from app.errors import AppError, Invalid

if TYPE_CHECKING:
    from app.bus.bus import Bus


class ModuleServer:
    """A module's commands served from NATS."""

    def __init__(self, bus: Bus, client: Client, module: str, subjects: Subjects) -> None:
        self._bus = bus
        self._client = client
        self.module = module
        self._subjects = subjects
        self._subscription: Subscription | None = None
        self._presence: Subscription | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._presence = await self._client.subscribe(
            self._subjects.presence(self.module), cb=self._present
        )
        self._subscription = await self._client.subscribe(
            self._subjects.module(self.module),
            queue=self._subjects.queue(self.module),
            cb=self._received,
        )
        await self._client.flush()
        logger.bind(module=self.module).info("serving module over NATS")

    async def _present(self, message: Msg) -> None:
        """Answer a census: this process serves the module."""
        with contextlib.suppress(nats.errors.Error):
            await message.respond(PRESENT)

    async def _received(self, message: Msg) -> None:
        task = asyncio.create_task(self._handle(message))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _handle(self, message: Msg) -> None:
        pattern = self._subjects.pattern(message.subject)
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
        if self._presence is not None:  # no longer counted as serving
            with contextlib.suppress(nats.errors.Error):
                await self._presence.unsubscribe()
            self._presence = None
        if self._subscription is not None:
            # No new messages; those NATS delivered already are still handled. (Cut off from
            # NATS, there is nothing to drain: its requesters time out and retry elsewhere.)
            with contextlib.suppress(nats.errors.Error):
                if self._client.is_connected:
                    await self._subscription.drain()  # type: ignore[no-untyped-call]
                else:
                    await self._subscription.unsubscribe()
            self._subscription = None
        if self._running:
            _, pending = await asyncio.wait(set(self._running), timeout=grace)
            for task in pending:
                task.cancel()
