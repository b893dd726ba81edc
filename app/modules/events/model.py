"""The event: its table, and the rules of its workflow (DRAFT -> SUBMITTED -> APPROVED | REJECTED).

`Event` is a plain object: the repository reads and writes its row with Core statements.

Every rule that decides whether a principal may do something to an event lives here, so
controllers and handlers only load, call, and return.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from msgspec import UNSET
from sqlalchemy import Column, Index, Integer, String, Table, Text

from app.bus.contracts import CALENDAR_RULE, Change, within_calendar
from app.bus.outbox import outbox_table
from app.clock import to_wire, utcnow
from app.errors import FieldError, Invalid
from app.identity import Principal, Role
from app.modules.events.contracts import (
    CreateEvent,
    EventChanges,
    EventNotEditable,
    EventStatus,
    InsufficientRole,
    InvalidTransition,
    NotEventOwner,
)
from app.storage.schema import Base, UTCDateTime

REVIEWERS = frozenset({Role.MODERATOR, Role.ADMIN})


def require_reviewer(principal: Principal, action: str) -> None:
    """Approve and reject are for moderators and admins; checked before the event is looked up."""
    if principal.role not in REVIEWERS:
        raise InsufficientRole(f"Only moderators and admins can {action} events")


def require_may_delete(principal: Principal) -> None:
    """Moderators never delete; checked before the event is looked up."""
    if principal.role == Role.MODERATOR:
        raise InsufficientRole("Moderators cannot delete events")


def check_within_calendar(**moments: datetime | None) -> None:
    """Refuse dates outside the contracts' calendar (keyword names are the wire's field names)."""
    errors = [
        FieldError(field=name, message=f"{name} must be {CALENDAR_RULE}")
        for name, moment in moments.items()
        if moment is not None and not within_calendar(moment)
    ]
    if errors:
        raise Invalid.fields(errors)


def check_dates(start: datetime, end: datetime) -> None:
    if end <= start:
        raise Invalid.fields(
            [FieldError(field="endDate", message="End date must be after start date")]
        )


EVENTS = Table(
    "events_events",
    Base.metadata,
    Column("id", String(36), primary_key=True),
    Column("organization_id", String(36), nullable=False),
    Column("created_by_id", String(36), nullable=False),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("location", String(200)),
    Column("start_date", UTCDateTime(), nullable=False),
    Column("end_date", UTCDateTime(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("rejection_reason", String(500)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("version", Integer(), server_default="1", nullable=False),
    Index("ix_events_events_org_start", "organization_id", "start_date", "id"),
    Index("ix_events_events_org_creator", "organization_id", "created_by_id"),
)


HISTORY = Table(
    "events_history",
    Base.metadata,
    Column("id", String(36), primary_key=True),  # the id of the notification the change emitted
    Column("event_id", String(36), nullable=False),
    Column("organization_id", String(36), nullable=False),
    Column("action", String(32), nullable=False),
    Column("actor_id", String(80), nullable=False),
    Column("actor_role", String(16)),
    Column("from_status", String(16)),
    Column("to_status", String(16)),
    Column("changes", Text),  # {field: {from, to}} as JSON
    Column("reason", String(500)),
    Column("correlation_id", String(128), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Index("ix_events_history_org_event_at", "organization_id", "event_id", "at"),
)
"""Each change of an event, written in the transaction of the change."""

OUTBOX = outbox_table("events")
"""The notifications the module emitted (`app.bus.outbox`)."""

SEARCH_INDEX = "events_search"
"""Prefix of SQLite's search index tables (migration 0003: an FTS5 table, its shadow tables and
its id map), maintained by triggers, not part of the metadata."""


def outside_metadata(name: str | None, type_: str, parent_names: object) -> bool:
    """For Alembic's `include_name`: False for the tables the metadata does not describe."""
    return not (type_ == "table" and name is not None and name.startswith(SEARCH_INDEX))


@dataclass(slots=True, eq=False)
class Event:
    """One row of `events_events` (fields in column order) and the workflow's rules."""

    id: str
    organization_id: str
    created_by_id: str
    title: str
    description: str
    location: str | None
    start_date: datetime
    end_date: datetime
    status: str
    rejection_reason: str | None
    created_at: datetime
    updated_at: datetime
    version: int = 1
    """Bumped by every change (`EventRepository.save`): the event's ETag."""

    @classmethod
    def create(cls, cmd: CreateEvent, by: Principal) -> Event:
        check_within_calendar(startDate=cmd.start_date, endDate=cmd.end_date)
        check_dates(cmd.start_date, cmd.end_date)
        now = utcnow()
        return cls(
            id=str(uuid.uuid4()),
            organization_id=by.organization_id,
            created_by_id=by.user_id,
            title=cmd.title,
            description=cmd.description,
            location=cmd.location,
            start_date=cmd.start_date,
            end_date=cmd.end_date,
            status=EventStatus.DRAFT,
            rejection_reason=None,
            created_at=now,
            updated_at=now,
        )

    @property
    def state(self) -> EventStatus:
        return EventStatus(self.status)

    def ensure_visible_to(self, principal: Principal) -> None:
        """A USER sees only their own events; moderators and admins see all of their org's."""
        if principal.role == Role.USER and self.created_by_id != principal.user_id:
            raise NotEventOwner()

    def update(self, changes: EventChanges, by: Principal) -> dict[str, Change]:
        """Apply the changes the model allows; what changed, `{wireName: Change}`."""
        if by.role == Role.USER:
            if self.created_by_id != by.user_id:
                raise NotEventOwner("You can only update your own events")
            if self.state != EventStatus.DRAFT:
                raise EventNotEditable(
                    f"Cannot update event with status {self.status}. "
                    "Only DRAFT events can be updated."
                )
        start = self.start_date if changes.start_date is UNSET else changes.start_date
        end = self.end_date if changes.end_date is UNSET else changes.end_date
        check_within_calendar(  # the dates given: a stored one is in UTC, its year may differ
            startDate=None if changes.start_date is UNSET else start,
            endDate=None if changes.end_date is UNSET else end,
        )
        check_dates(start, end)
        changed: dict[str, Change] = {}
        for field, name in _WIRE_NAMES.items():
            value = getattr(changes, field)
            if value is not UNSET and value != getattr(self, field):
                changed[name] = Change(from_=_wire(getattr(self, field)), to=_wire(value))
                setattr(self, field, value)
        self.updated_at = utcnow()
        return changed

    def ensure_deletable_by(self, principal: Principal) -> None:
        require_may_delete(principal)
        if principal.role == Role.USER:
            if self.created_by_id != principal.user_id:
                raise NotEventOwner("You can only delete your own events")
            if self.state != EventStatus.DRAFT:
                raise EventNotEditable(
                    f"Cannot delete event with status {self.status}. "
                    "Only DRAFT events can be deleted."
                )

    def submit(self, by: Principal) -> None:
        if self.created_by_id != by.user_id:
            raise NotEventOwner("Only the creator of an event can submit it")
        if self.state != EventStatus.DRAFT:
            raise InvalidTransition(
                f"Cannot submit event with status {self.status}. "
                "Only DRAFT events can be submitted."
            )
        self._move_to(EventStatus.SUBMITTED)
        self.rejection_reason = None

    def approve(self, by: Principal) -> None:
        require_reviewer(by, "approve")
        if self.state != EventStatus.SUBMITTED:
            raise InvalidTransition(
                f"Cannot approve event with status {self.status}. "
                "Only SUBMITTED events can be approved."
            )
        self._move_to(EventStatus.APPROVED)

    def reject(self, by: Principal, reason: str) -> None:
        require_reviewer(by, "reject")
        if self.state != EventStatus.SUBMITTED:
            raise InvalidTransition(
                f"Cannot reject event with status {self.status}. "
                "Only SUBMITTED events can be rejected."
            )
        self._move_to(EventStatus.REJECTED)
        self.rejection_reason = reason

    def _move_to(self, status: EventStatus) -> None:
        self.status = status
        self.updated_at = utcnow()


_WIRE_NAMES = {
    "title": "title",
    "description": "description",
    "location": "location",
    "start_date": "startDate",
    "end_date": "endDate",
}


def _wire(value: str | datetime | None) -> str | None:
    return to_wire(value) if isinstance(value, datetime) else value
