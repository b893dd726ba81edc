"""The in-process transport through the wire codec (`BUS_TRANSPORT=local-wire`; the test suite's
default): every envelope, result and error is encoded and decoded as it would be between
processes, so anything that could not cross a process boundary (an ORM row, a dict where a
Struct belongs, an exception that is not an AppError) fails here as it would over NATS."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from app.bus import codec
from app.bus.envelope import Outcome
from app.bus.transports.local import LocalTransport
from app.errors import AppError, Internal

if TYPE_CHECKING:
    from app.bus.envelope import Envelope


class WireRoundTripTransport(LocalTransport):
    async def request(self, envelope: Envelope[Any]) -> Outcome:
        self._enter()
        try:
            return await self._round_trip(envelope)
        finally:
            self._leave()

    async def _round_trip(self, envelope: Envelope[Any]) -> Outcome:
        registration = self._bus.registration(envelope.pattern)
        try:
            incoming = codec.decode_envelope(
                codec.encode_envelope(envelope), registration.payload_type
            )
        except msgspec.ValidationError as exc:
            raise Internal(
                f"payload of {envelope.pattern} does not fit its contract: {exc}"
            ) from None
        try:
            outcome = await self._bus.dispatch(incoming)
            reply = codec.encode_outcome(outcome)
        except AppError as exc:
            reply = codec.encode_error(exc)
        return codec.decode_reply(reply, registration.result_type)
