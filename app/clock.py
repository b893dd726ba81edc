"""Time in one place: aware UTC datetimes inside, ISO 8601 with milliseconds on the wire."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_wire(moment: datetime) -> str:
    """`2026-06-01T10:00:00.000Z`: UTC, millisecond precision."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # isoformat is C and zero-pads the year; its "+00:00" ends with 6 characters.
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"
