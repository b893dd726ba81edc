"""The send side of the bus over NATS request/reply (NestJS's client proxy): a command goes to
subject `<prefix>.cmd.<pattern>`, its envelope metadata in headers, the MessagePack payload as
body, and waits for the reply at most the remaining deadline. No worker listening is
`Unavailable` NO_RESPONDERS: the command never started, so the send side may retry it and answers
503 when attempts run out, at once rather than at the deadline. The client reconnects by itself
after a NATS restart. The handle side is `nats_server.py`.

A census counts each remote module's workers every second (`workers`, shown by `/health`). While
it finds none, a command that NATS also finds no responder for is refused at once, not retried
(there is nothing to wait for), and the breaker does not count it, so a worker that comes back
is used by the very next command.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

import msgspec
import nats
from loguru import logger
from nats.aio.client import Client

from app.bus import codec
from app.bus.envelope import Outcome, module_of
from app.bus.transports.nats_connection import PRESENT, NatsServer, Subjects, close, connect
from app.errors import Timeout, Unavailable

if TYPE_CHECKING:
    from app.bus.bus import Bus
    from app.bus.envelope import Envelope


CENSUS_EVERY = 1.0
"""Seconds between two counts of each remote module's workers."""
CENSUS_EVERY_WITHOUT_WORKERS = 0.2
"""...while a module has none: its first worker is seen within a fifth of a second (a count of
no subscriber at all costs one round trip: NATS answers "no responders" at once)."""
CENSUS_WINDOW = 0.25
"""How long a count collects the workers' answers."""


class WorkerGone(Unavailable):
    """No responder, though the last census found workers: one may be restarting (retried)."""

    default_code = "NO_RESPONDERS"


class NoWorkers(Unavailable):
    """No responder, and the last census found none either: refused at once (not retried)."""

    default_code = "NO_RESPONDERS"
    transient = False


class NatsTransport:
    def __init__(
        self, bus: Bus, server: NatsServer, name: str, subjects: Subjects, modules: frozenset[str]
    ) -> None:
        self._bus = bus
        self._server = server
        self._name = name
        self._subjects = subjects
        self._modules = sorted(modules)
        self._client: Client | None = None
        self._census: asyncio.Task[None] | None = None
        self.workers: dict[str, int] = {}
        """Each remote module's workers, as the last census counted them."""

    async def open(self) -> None:
        self._client = await connect(self._server, self._name)
        await self.take_census()
        self._census = asyncio.create_task(self._census_forever())

    async def close(self) -> None:
        if self._census is not None:
            self._census.cancel()
            await asyncio.gather(self._census, return_exceptions=True)
        if self._client is not None:
            await close(self._client)

    async def take_census(self) -> None:
        counts = await asyncio.gather(*(self._count(module) for module in self._modules))
        self.workers = dict(zip(self._modules, counts, strict=True))

    async def _census_forever(self) -> None:
        while True:
            without = not all(self.workers.values())
            await asyncio.sleep(CENSUS_EVERY_WITHOUT_WORKERS if without else CENSUS_EVERY)
            try:
                await self.take_census()
            except Exception:  # the next one will do
                logger.opt(exception=True).warning("worker census failed")

    async def _count(self, module: str) -> int:
        """The workers that answer on the module's presence subject within the window. With no
        subscriber at all, NATS itself answers at once with an empty "no responders" status
        message: then there is nobody to wait for."""
        client = self._client
        if client is None or not client.is_connected:
            return 0
        inbox = client.new_inbox()
        answers = await client.subscribe(inbox)
        count = 0
        try:
            await client.publish(self._subjects.presence(module), b"", reply=inbox)
            until = time.monotonic() + CENSUS_WINDOW
            while (left := until - time.monotonic()) > 0:
                try:
                    message = await answers.next_msg(timeout=left)
                except nats.errors.TimeoutError:
                    break
                if message.data == PRESENT:
                    count += 1
                elif not count and (message.headers or {}).get("Status") == "503":
                    return 0  # no responders
        except nats.errors.Error:
            return 0
        finally:
            with contextlib.suppress(nats.errors.Error):
                await answers.unsubscribe()
        return count

    @property
    def client(self) -> Client | None:
        """The NATS connection, once open (notifications share it)."""
        return self._client

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
                self._subjects.command(envelope.pattern),
                msgspec.msgpack.encode(envelope.payload),
                timeout=remaining,
                headers=codec.envelope_headers(envelope),
            )
        except nats.errors.NoRespondersError:
            if self.workers.get(module) == 0:
                raise NoWorkers(f"No {module} worker is running", retry_after=1.0) from None
            raise WorkerGone(f"No {module} worker is available", retry_after=1.0) from None
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
