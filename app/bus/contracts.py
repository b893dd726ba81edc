"""What every module's `contracts.py` builds on: the base Struct for commands and views, and
constrained text fields carrying their own error messages for the gateway to report."""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from app.clock import to_wire
from app.errors import PreconditionFailed

FIRST_YEAR, LAST_YEAR = 1900, 9998
CALENDAR_RULE = f"in the years {FIRST_YEAR}-{LAST_YEAR} (as written, before any UTC offset)"
YEARS = r"^(?:19\d\d|[2-8]\d\d\d|9[0-8]\d\d|99[0-8]\d|999[0-8])-"
"""The same rule as a pattern for date-time strings, published in the schema."""
EARLIEST = datetime(FIRST_YEAR, 1, 1, tzinfo=timezone(timedelta(hours=23, minutes=59)))
LATEST = datetime(
    LAST_YEAR, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(-timedelta(hours=23, minutes=59))
)


def moment(example: str | None = None) -> Meta:
    """A date-time with a UTC offset, in the contracts' calendar (see `YEARS`)."""
    return Meta(
        tz=True,
        extra={"message": "must be an ISO 8601 date-time with a UTC offset"},
        extra_json_schema={"pattern": YEARS},
        examples=[example] if example else None,
    )


NO_NUL = r"^[^\x00]*$"
"""Free text may hold any character but NUL, which PostgreSQL cannot store."""

SPACE_CHARS = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
"""What trimming removes: the union of Python's `str.isspace()` and ECMA-262's `\\s` (the two
differ, and JSON Schema patterns are ECMA-262)."""
SPACE = "".join(f"\\u{ord(c):04x}" for c in SPACE_CHARS)
"""The same characters as the body of a regex character class, read alike by both dialects."""


@dataclass(frozen=True, slots=True)
class Command:
    """A command as its module declares it, once, in its `contracts.py`: the gateway sends it by
    this declaration and the module registers its handler by it, so the two cannot disagree.

    `read`: the command changes nothing (a read-only transaction, no idempotency record), and an
    attempt that timed out may be sent again. `retry_after_timeout` overrides the second half
    for a read that must not be repeated (a login: CPU-heavy, and a retry under overload is how
    overload grows)."""

    name: str
    payload: type[Any]
    read: bool = False
    retry_after_timeout: bool | None = None
    pattern: Mapping[str, str] = field(init=False)
    """The NestJS-style pattern, `{"cmd": "events.submit"}`, made once."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "pattern", MappingProxyType({"cmd": self.name}))


@dataclass(frozen=True, slots=True)
class Topic:
    """A notification as its module declares it, once, in its `contracts.py`: the module emits
    it by this declaration (`bus.emit`) and subscribers take it by it (`bus.on`). The name is
    past tense, `"events.approved"`: something that happened, that anyone may hear about."""

    name: str
    payload: type[Any]


Uuid = Annotated[str, Meta(extra_json_schema={"format": "uuid"})]
"""An id in a view: a UUID in its canonical text form."""
Timestamp = Annotated[str, Meta(extra_json_schema={"format": "date-time"})]
"""A date-time in a view, as `app.clock.to_wire` writes it (UTC, milliseconds, `Z`)."""


class Contract(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, rename="camel"
):
    """Commands and views: frozen, keyword-only, camelCase on the wire, unknown fields refused.
    Text fields declared with `text(...)` arrive trimmed (see `trimmed`).

    msgspec does not inherit `kw_only`, so subclasses say `frozen=True, kw_only=True` again.
    """

    def __post_init__(self) -> None:
        for name in _trimmed_fields(type(self)):
            value = getattr(self, name)
            if isinstance(value, str):
                msgspec.structs.force_setattr(self, name, value.strip(SPACE_CHARS))


class Conditional(Contract, frozen=True, kw_only=True):
    """A command on one resource that a request may make conditional on its version (HTTP
    `If-Match`): `if_match` holds the versions it allows, None for no condition."""

    if_match: tuple[int, ...] | None = None

    def check_version(self, version: int) -> None:
        """PreconditionFailed (412) unless the resource is at a version the request allows."""
        if self.if_match is not None and version not in self.if_match:
            raise PreconditionFailed()


MAX_PAGE = 1_000_000
"""The highest page number a listing accepts."""
SortOrder = Literal["asc", "desc"]

# A listing's paging and order, the same in every module's query contract.
PageNumber = Annotated[
    int, Meta(ge=1, le=MAX_PAGE, extra={"message": f"page must be an integer from 1 to {MAX_PAGE}"})
]
PageSize = Annotated[
    int, Meta(ge=1, le=100, extra={"message": "limit must be an integer from 1 to 100"})
]
SortDirection = Annotated[SortOrder, Meta(extra={"message": "sortOrder must be asc or desc"})]


Value = str | int | bool | None


class Change(Contract, frozen=True, kw_only=True):
    """One field's change: `{"from": ..., "to": ...}` (date-times as the wire writes them)."""

    from_: Value = msgspec.field(name="from")
    to: Value


Action = Literal[
    "event.created",
    "event.updated",
    "event.submitted",
    "event.approved",
    "event.rejected",
    "event.deleted",
    "member.joined",
    "member.role_changed",
    "member.deactivated",
    "member.reactivated",
    "organization.created",
]


class Entry(Contract, frozen=True, kw_only=True):
    """A recorded change: an event's history and the organization's audit log have the same
    entries (an entry's id is the id of the notification its change emitted)."""

    id: Uuid
    action: Action
    subject_type: Literal["event", "member", "organization"]
    subject_id: Uuid
    actor_id: Annotated[str, Meta(description="A member's id, or `operator` for the CLI")]
    actor_role: str | None
    from_status: str | None
    to_status: str | None
    changes: dict[str, Change] | None
    reason: str | None
    correlation_id: str
    at: Timestamp

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Entry:
        """An entry from its stored columns (`changes` as JSON text, `at` a UTC datetime)."""
        changes = row["changes"]
        return cls(
            id=row["id"],
            action=row["action"],
            subject_type=row["subject_type"],
            subject_id=row["subject_id"],
            actor_id=row["actor_id"],
            actor_role=row["actor_role"],
            from_status=row["from_status"],
            to_status=row["to_status"],
            changes=None if changes is None else _CHANGES.decode(changes),
            reason=row["reason"],
            correlation_id=row["correlation_id"],
            at=to_wire(row["at"]),
        )


_CHANGES = msgspec.json.Decoder(dict[str, Change])


class PageMeta(Contract, frozen=True, kw_only=True):
    """Where a page of a listing is: the same for every module's listings."""

    page: int
    limit: int
    total: int
    total_pages: int
    has_previous: bool
    has_next: bool

    @classmethod
    def of(cls, page: int, limit: int, total: int) -> PageMeta:
        total_pages = -(-total // limit)
        return cls(
            page=page,
            limit=limit,
            total=total,
            total_pages=total_pages,
            has_previous=page > 1,
            has_next=page < total_pages,
        )


def text(
    field: str,
    rule: str,
    *,
    min_length: int = 0,
    max_length: int,
    trim: bool = True,
    example: str | None = None,
) -> Meta:
    """Free text: no NUL, and `min_length`-`max_length` characters once trimmed of surrounding
    whitespace (`"   "` is empty). The rule lives in one regex, so the published schema says
    exactly what the server accepts; the contract stores the trimmed value. `trim=False` counts
    the value as sent. A client sees `{field} must be {rule}`, or a NUL's own message."""
    if trim:
        constraints: dict[str, Any] = {"pattern": trimmed(min_length, max_length)}
    else:
        constraints = {"pattern": NO_NUL, "min_length": min_length, "max_length": max_length}
    return Meta(
        **constraints,
        examples=[example] if example is not None else None,
        extra={
            "message": f"{field} must be {rule}",
            "nul_message": f"{field} must not contain NUL characters",
            "trim": trim,
        },
    )


def checked(
    field: str,
    rule: str,
    *,
    pattern: str,
    min_length: int | None = None,
    max_length: int,
    example: str | None = None,
) -> Meta:
    """Text with a format of its own (an email, a password), taken as sent."""
    return Meta(
        pattern=pattern,
        examples=[example] if example is not None else None,
        min_length=min_length,
        max_length=max_length,
        extra={"message": f"{field} must be {rule}"},
    )


def trimmed(min_length: int, max_length: int) -> str:
    """A regex for text of `min_length`-`max_length` characters once trimmed, NUL nowhere: the
    first and last characters that are not whitespace enclose the counted text."""
    space, solid, any_ = f"[{SPACE}]*", f"[^{SPACE}\\x00]", "[^\\x00]"
    if max_length == 1:
        core = solid
    elif min_length >= 2:
        core = f"{solid}{any_}{{{min_length - 2},{max_length - 2}}}{solid}"
    else:
        core = f"{solid}(?:{any_}{{0,{max_length - 2}}}{solid})?"
    if min_length == 0:
        core = f"(?:{core})?"
    return f"^{space}{core}{space}$"


_TRIMMED: dict[type[Any], tuple[str, ...]] = {}


def _trimmed_fields(struct_type: type[Any]) -> tuple[str, ...]:
    """The attribute names of a contract's trimmed text fields, found once per type."""
    found = _TRIMMED.get(struct_type)
    if found is None:
        hints = typing.get_type_hints(struct_type, include_extras=True)
        found = _TRIMMED[struct_type] = tuple(
            name for name in struct_type.__struct_fields__ if _is_trimmed(hints[name])
        )
    return found


def _is_trimmed(annotation: Any) -> bool:
    if typing.get_origin(annotation) is typing.Annotated:
        return any(
            isinstance(meta, Meta) and bool(meta.extra and meta.extra.get("trim"))
            for meta in typing.get_args(annotation)[1:]
        )
    return any(_is_trimmed(arg) for arg in typing.get_args(annotation))


def written_within_calendar(moment: datetime) -> bool:
    """The rule for date-times as a client writes them, and as the schema says (`YEARS`): the
    year as written, before its offset, in FIRST_YEAR-LAST_YEAR."""
    return FIRST_YEAR <= moment.year <= LAST_YEAR


def within_calendar(moment: datetime) -> bool:
    """The same rule once the offset is gone (the bus carries date-times in UTC): the instant
    lies where a date-time written within the calendar, with any offset, can lie. Converting
    such a moment to UTC never overflows (year 1 with a positive offset, year 9999 with a
    negative one would)."""
    return EARLIEST <= moment <= LATEST
