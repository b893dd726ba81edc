"""Time in one place: aware UTC datetimes inside, ISO 8601 with milliseconds on the wire."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_wire(moment: datetime) -> str:
    """`2026-06-01T10:00:00.000Z`: UTC, millisecond precision."""
    if moment.tzinfo is not UTC and moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    # isoformat is C and zero-pads the year; a naive moment has no offset to cut off.
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
