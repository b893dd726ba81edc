"""The events module's wire surface: commands, views, error codes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from msgspec import UNSET, Meta, UnsetType

from app.bus.contracts import (
    Action,
    Change,
    Command,
    Conditional,
    Contract,
    Entry,
    PageMeta,
    PageNumber,
    PageSize,
    SortDirection,
    Timestamp,
    Topic,
    Uuid,
    moment,
    text,
)
from app.errors import Conflict, Forbidden, NotFound


class EventStatus(StrEnum):
    DRAFT = "DRAFT"
    SUBMITTED = "SUBMITTED"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


SortField = Literal["createdAt", "startDate", "title", "status"]

Title = Annotated[
    str,
    text("title", "3-200 characters long", min_length=3, max_length=200, example="Team offsite"),
]
Description = Annotated[
    str,
    text(
        "description",
        "10-5000 characters long",
        min_length=10,
        max_length=5000,
        example="A day of planning for the next quarter.",
    ),
]
Location = Annotated[
    str, text("location", "at most 200 characters long", max_length=200, example="Room 4")
]
Reason = Annotated[
    str,
    text(
        "reason",
        "10-500 characters long",
        min_length=10,
        max_length=500,
        example="The date clashes with the audit.",
    ),
]
Search = Annotated[str, text("search", "at most 200 characters long", max_length=200, trim=False)]
EventId = str


When = Annotated[datetime, moment()]
Start = Annotated[datetime, moment("2026-06-15T09:00:00.000Z")]
End = Annotated[datetime, moment("2026-06-15T17:00:00.000Z")]


# Commands


class CreateEvent(Contract, frozen=True, kw_only=True):
    title: Title
    description: Description
    location: Location | None = None
    start_date: Start
    end_date: End


class EventChanges(Contract, frozen=True, kw_only=True):
    """The body of PATCH /events/{id}: only the fields given change; `location: null` clears it."""

    title: Title | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    location: Location | UnsetType | None = UNSET
    start_date: Start | UnsetType = UNSET
    end_date: End | UnsetType = UNSET


class UpdateEvent(Conditional, frozen=True, kw_only=True):
    event_id: EventId
    changes: EventChanges


class FindEvent(Contract, frozen=True, kw_only=True):
    event_id: EventId


class DeleteEvent(Conditional, frozen=True, kw_only=True):
    event_id: EventId


class SubmitEvent(Conditional, frozen=True, kw_only=True):
    event_id: EventId


class ApproveEvent(Conditional, frozen=True, kw_only=True):
    event_id: EventId


class Rejection(Contract, frozen=True, kw_only=True):
    """The body of POST /events/{id}/reject."""

    reason: Reason


class RejectEvent(Conditional, frozen=True, kw_only=True):
    event_id: EventId
    reason: Reason


class ListEvents(Contract, frozen=True, kw_only=True):
    """GET /events query: filters, sort and page. Dates are inclusive bounds on startDate."""

    page: PageNumber = 1
    limit: PageSize = 10
    sort_by: Annotated[
        SortField,
        Meta(extra={"message": "sortBy must be one of createdAt, startDate, title, status"}),
    ] = "startDate"
    sort_order: SortDirection = "asc"
    status: (
        Annotated[
            EventStatus,
            Meta(extra={"message": "status must be one of DRAFT, SUBMITTED, APPROVED, REJECTED"}),
        ]
        | None
    ) = None
    search: Search | None = None
    start_date_from: When | None = None
    start_date_to: When | None = None


class EventHistory(Contract, frozen=True, kw_only=True):
    """GET /events/{id}/history."""

    event_id: EventId


# Commands, as the gateway sends them and the module registers them

CREATE_EVENT = Command("events.create", CreateEvent)
LIST_EVENTS = Command("events.findAll", ListEvents, read=True)
FIND_EVENT = Command("events.findOne", FindEvent, read=True)
UPDATE_EVENT = Command("events.update", UpdateEvent)
DELETE_EVENT = Command("events.delete", DeleteEvent)
SUBMIT_EVENT = Command("events.submit", SubmitEvent)
APPROVE_EVENT = Command("events.approve", ApproveEvent)
REJECT_EVENT = Command("events.reject", RejectEvent)
EVENT_HISTORY = Command("events.history", EventHistory, read=True)


# Notifications: what happened to an event, emitted in the transaction of the change


class EventNotification(Contract, frozen=True, kw_only=True):
    """What every event notification says: which event, its status before and after, and for
    an update the fields that changed, for a rejection the reason. The actor, the time and the
    correlation id are the notification's own."""

    event_id: str
    organization_id: str
    from_status: EventStatus | None = None
    to_status: EventStatus | None = None
    changes: dict[str, Change] | None = None
    reason: str | None = None


class EventCreated(EventNotification, frozen=True, kw_only=True):
    pass


class EventUpdated(EventNotification, frozen=True, kw_only=True):
    pass


class EventSubmitted(EventNotification, frozen=True, kw_only=True):
    pass


class EventApproved(EventNotification, frozen=True, kw_only=True):
    pass


class EventRejected(EventNotification, frozen=True, kw_only=True):
    pass


class EventDeleted(EventNotification, frozen=True, kw_only=True):
    pass


EVENT_CREATED = Topic("events.created", EventCreated)
EVENT_UPDATED = Topic("events.updated", EventUpdated)
EVENT_SUBMITTED = Topic("events.submitted", EventSubmitted)
EVENT_APPROVED = Topic("events.approved", EventApproved)
EVENT_REJECTED = Topic("events.rejected", EventRejected)
EVENT_DELETED = Topic("events.deleted", EventDeleted)
TOPICS = (
    EVENT_CREATED,
    EVENT_UPDATED,
    EVENT_SUBMITTED,
    EVENT_APPROVED,
    EVENT_REJECTED,
    EVENT_DELETED,
)
ACTIONS: dict[str, Action] = {
    EVENT_CREATED.name: "event.created",
    EVENT_UPDATED.name: "event.updated",
    EVENT_SUBMITTED.name: "event.submitted",
    EVENT_APPROVED.name: "event.approved",
    EVENT_REJECTED.name: "event.rejected",
    EVENT_DELETED.name: "event.deleted",
}
"""The history and audit action of each notification."""


# Views


class EventView(Contract, frozen=True, kw_only=True):
    id: Uuid
    title: str
    description: str
    location: str | None
    start_date: Timestamp
    end_date: Timestamp
    status: EventStatus
    rejection_reason: str | None
    organization_id: Uuid
    created_by_id: Uuid
    created_at: Timestamp
    updated_at: Timestamp
    version: Annotated[int, Meta(description="The event's version: its ETag, quoted")]


class EventPage(Contract, frozen=True, kw_only=True):
    data: list[EventView]
    meta: PageMeta


class HistoryView(Contract, frozen=True, kw_only=True):
    """An event's history, oldest first."""

    data: list[Entry]


# Errors


class EventNotFound(NotFound):
    default_code = "EVENT_NOT_FOUND"
    default_message = "Event not found"


class InvalidTransition(Conflict):
    default_code = "INVALID_TRANSITION"
    default_message = "Invalid status transition"


class NotEventOwner(Forbidden):
    default_code = "NOT_EVENT_OWNER"
    default_message = "You do not have access to this event"


class EventNotEditable(Forbidden):
    default_code = "EVENT_NOT_EDITABLE"
    default_message = "Only DRAFT events can be changed"


class InsufficientRole(Forbidden):
    default_code = "INSUFFICIENT_ROLE"
    default_message = "Your role does not allow this action"
