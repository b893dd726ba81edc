"""Transport for tests: in-process, but every envelope, result and error crosses the wire codec.

Anything that could not cross a process boundary (an ORM row, a dict where a Struct belongs, an
exception that is not an AppError) fails here exactly as it would over a real transport.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from app.bus import codec
from app.errors import AppError, Internal

if TYPE_CHECKING:
    from app.bus.bus import Bus
    from app.bus.envelope import Envelope


class WireRoundTripTransport:
    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def request(self, envelope: Envelope[Any]) -> Any:
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
            result = await self._bus.dispatch(incoming)
            reply = codec.encode_result(result)
        except AppError as exc:
            reply = codec.encode_error(exc.to_data())
        return codec.decode_reply(reply, registration.result_type)
