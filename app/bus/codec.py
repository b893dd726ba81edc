"""The wire codec: envelopes, results and errors as MessagePack, the same for every transport."""

from __future__ import annotations

from typing import Any

import msgspec

from app.bus.envelope import Envelope
from app.errors import AppError, ErrorData

_encoder = msgspec.msgpack.Encoder()
_NOTHING = msgspec.Raw(_encoder.encode(None))


class Reply(msgspec.Struct, frozen=True, kw_only=True):
    result: msgspec.Raw = _NOTHING
    error: ErrorData | None = None
    replayed: bool = False


_raw_envelope = msgspec.msgpack.Decoder(Envelope[msgspec.Raw])
_reply = msgspec.msgpack.Decoder(Reply)


def encode_envelope(envelope: Envelope[Any]) -> bytes:
    return _encoder.encode(envelope)


def decode_envelope(data: bytes, payload_type: Any) -> Envelope[Any]:
    """Raises msgspec.ValidationError when the payload does not fit its contract."""
    raw = _raw_envelope.decode(data)
    payload = msgspec.msgpack.decode(raw.payload, type=payload_type)
    return msgspec.structs.replace(raw, payload=payload)


def encode_result(result: Any, *, replayed: bool = False) -> bytes:
    return _encoder.encode(Reply(result=msgspec.Raw(_encoder.encode(result)), replayed=replayed))


def encode_error(error: ErrorData) -> bytes:
    return _encoder.encode(Reply(error=error))


def decode_reply(data: bytes, result_type: Any) -> tuple[Any, bool]:
    """(result, replayed), or the error re-raised as an AppError of its category."""
    reply = _reply.decode(data)
    if reply.error is not None:
        raise AppError.from_data(reply.error)
    return msgspec.msgpack.decode(reply.result, type=result_type), reply.replayed
