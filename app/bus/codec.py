"""The wire codec: envelopes, results and errors as MessagePack, the same for every transport."""

from __future__ import annotations

from typing import Any

import msgspec

from app.bus.envelope import Envelope, Outcome
from app.errors import AppError, ErrorData
from app.identity import Principal

_encoder = msgspec.msgpack.Encoder()
_NOTHING = msgspec.Raw(_encoder.encode(None))


class Reply(msgspec.Struct, frozen=True, kw_only=True):
    """An outcome or an error on the wire; `replayed` for either."""

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


def encode_outcome(outcome: Outcome) -> bytes:
    result = msgspec.Raw(_encoder.encode(outcome.result))
    return _encoder.encode(Reply(result=result, replayed=outcome.replayed))


def encode_error(error: AppError) -> bytes:
    return _encoder.encode(Reply(error=error.to_data(), replayed=error.replayed))


def decode_reply(data: bytes, result_type: Any) -> Outcome:
    """The outcome, or the error re-raised as an AppError of its category."""
    reply = _reply.decode(data)
    if reply.error is not None:
        error = AppError.from_data(reply.error)
        error.replayed = reply.replayed
        raise error
    return Outcome(msgspec.msgpack.decode(reply.result, type=result_type), reply.replayed)


# Envelope metadata as message headers (NATS), the payload alone as the message body.

_HEADER = "Eb-"


def envelope_headers(envelope: Envelope[Any]) -> dict[str, str]:
    headers = {
        f"{_HEADER}Message-Id": envelope.message_id,
        f"{_HEADER}Correlation-Id": envelope.correlation_id,
        f"{_HEADER}Attempt": str(envelope.attempt),
        f"{_HEADER}Max-Attempts": str(envelope.max_attempts),
        f"{_HEADER}Read": "1" if envelope.read else "0",
    }
    optional = {
        f"{_HEADER}Causation-Id": envelope.causation_id,
        f"{_HEADER}Idempotency-Key": envelope.idempotency_key,
        f"{_HEADER}Deadline": repr(envelope.deadline) if envelope.deadline is not None else None,
        f"{_HEADER}Principal": (
            msgspec.json.encode(envelope.principal).decode() if envelope.principal else None
        ),
        "traceparent": envelope.traceparent,
    }
    headers.update({name: value for name, value in optional.items() if value is not None})
    return headers


def envelope_from_message(
    pattern: str, headers: dict[str, str], body: bytes, payload_type: Any
) -> Envelope[Any]:
    """Raises msgspec.ValidationError or ValueError when the message does not fit."""
    principal = headers.get(f"{_HEADER}Principal")
    deadline = headers.get(f"{_HEADER}Deadline")
    return Envelope(
        pattern=pattern,
        payload=msgspec.msgpack.decode(body, type=payload_type),
        message_id=headers[f"{_HEADER}Message-Id"],
        correlation_id=headers[f"{_HEADER}Correlation-Id"],
        causation_id=headers.get(f"{_HEADER}Causation-Id"),
        principal=msgspec.json.decode(principal, type=Principal) if principal else None,
        idempotency_key=headers.get(f"{_HEADER}Idempotency-Key"),
        deadline=float(deadline) if deadline else None,
        attempt=int(headers.get(f"{_HEADER}Attempt", "1")),
        max_attempts=int(headers.get(f"{_HEADER}Max-Attempts", "1")),
        read=headers.get(f"{_HEADER}Read") == "1",
        traceparent=headers.get("traceparent"),
    )
