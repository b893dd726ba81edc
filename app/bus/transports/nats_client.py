"""The send side of the bus over NATS request/reply (NestJS's client proxy): a command goes to
subject `<prefix>.cmd.<pattern>`, its envelope metadata in headers, the MessagePack payload as
body, and waits for the reply at most the remaining deadline. No worker listening is
`Unavailable` NO_RESPONDERS: the command never started, so the send side may retry it and answers
503 when attempts run out, at once rather than at the deadline. The client reconnects by itself
after a NATS restart. The handle side is `nats_server.py`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import msgspec
import nats
from loguru import logger
from nats.aio.client import Client

from app.bus import codec
from app.bus.envelope import Outcome, module_of
from app.bus.transports.nats_connection import Subjects, connect
from app.errors import Timeout, Unavailable

if TYPE_CHECKING:
    from app.bus.bus import Bus
    from app.bus.envelope import Envelope


class NoWorker(Unavailable):
    default_code = "NO_RESPONDERS"


class NatsTransport:
    def __init__(self, bus: Bus, url: str, name: str, subjects: Subjects) -> None:
        self._bus = bus
        self._url = url
        self._name = name
        self._subjects = subjects
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
                self._subjects.command(envelope.pattern),
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
