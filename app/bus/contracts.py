"""What every module's `contracts.py` builds on: the base Struct for commands and views, and
constrained text fields carrying their own error messages for the gateway to report."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
from msgspec import Meta

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)
CALENDAR_RULE = "between 1900-01-01 and 9999-12-30 UTC"

NO_NUL = r"^[^\x00]*$"
"""Free text may hold any character but NUL, which PostgreSQL cannot store."""


class Contract(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, rename="camel"
):
    """Commands and views: frozen, keyword-only, camelCase on the wire, unknown fields refused.

    msgspec does not inherit `kw_only`, so subclasses say `frozen=True, kw_only=True` again.
    """


def text(
    field: str,
    rule: str,
    *,
    pattern: str = NO_NUL,
    min_length: int | None = None,
    max_length: int | None = None,
) -> Meta:
    """Constraints for a text field, with the messages a client sees when they fail:
    `{field} must be {rule}`, or for a NUL character (the default pattern) its own message."""
    return Meta(
        min_length=min_length,
        max_length=max_length,
        pattern=pattern,
        extra={
            "message": f"{field} must be {rule}",
            "pattern_message": f"{field} must not contain NUL characters"
            if pattern == NO_NUL
            else f"{field} must be {rule}",
        },
    )


def within_calendar(moment: datetime) -> bool:
    """Date-times in contracts stay in this range: beyond it, converting to UTC can overflow
    (year 1 with a positive offset, year 9999 with a negative one)."""
    return EARLIEST <= moment <= LATEST
