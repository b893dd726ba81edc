"""Events handlers: load through the unit of work, let the model decide, return a view."""

from __future__ import annotations

from app.bus.contracts import Conditional, Entry, PageMeta
from app.clock import to_wire
from app.identity import Principal, Role
from app.modules.events.contracts import (
    EVENT_APPROVED,
    EVENT_CREATED,
    EVENT_DELETED,
    EVENT_REJECTED,
    EVENT_SUBMITTED,
    EVENT_UPDATED,
    ApproveEvent,
    CreateEvent,
    DeleteEvent,
    EventHistory,
    EventNotFound,
    EventPage,
    EventView,
    FindEvent,
    HistoryView,
    ListEvents,
    RejectEvent,
    SubmitEvent,
    UpdateEvent,
)
from app.modules.events.model import (
    Event,
    check_within_calendar,
    require_may_delete,
    require_reviewer,
)
from app.modules.events.uow import EventsUnitOfWork


async def create_event(cmd: CreateEvent, uow: EventsUnitOfWork, principal: Principal) -> EventView:
    event = Event.create(cmd, by=principal)
    await uow.events.add(event)
    await uow.record(EVENT_CREATED, event, principal, from_status=None)
    return event_view(event)


async def list_events(cmd: ListEvents, uow: EventsUnitOfWork, principal: Principal) -> EventPage:
    check_within_calendar(startDateFrom=cmd.start_date_from, startDateTo=cmd.start_date_to)
    own_only = principal.user_id if principal.role == Role.USER else None
    rows, total = await uow.events.page(cmd, principal.organization_id, own_only)
    return EventPage(
        data=[event_view(row) for row in rows],
        meta=PageMeta.of(cmd.page, cmd.limit, total),
    )


async def find_event(cmd: FindEvent, uow: EventsUnitOfWork, principal: Principal) -> EventView:
    event = await _load(uow, cmd.event_id, principal, for_update=False)
    event.ensure_visible_to(principal)
    return event_view(event)


async def update_event(cmd: UpdateEvent, uow: EventsUnitOfWork, principal: Principal) -> EventView:
    event = await _load(uow, cmd.event_id, principal, condition=cmd)
    changes = event.update(cmd.changes, by=principal)
    await uow.events.save(event)
    await uow.record(EVENT_UPDATED, event, principal, from_status=event.state, changes=changes)
    return event_view(event)


async def delete_event(cmd: DeleteEvent, uow: EventsUnitOfWork, principal: Principal) -> None:
    require_may_delete(principal)
    event = await _load(uow, cmd.event_id, principal, condition=cmd)
    event.ensure_deletable_by(principal)
    await uow.events.delete(event)
    await uow.record(EVENT_DELETED, event, principal, from_status=event.state)


async def submit_event(cmd: SubmitEvent, uow: EventsUnitOfWork, principal: Principal) -> EventView:
    event = await _load(uow, cmd.event_id, principal, condition=cmd)
    before = event.state
    event.submit(by=principal)
    await uow.events.save(event)
    await uow.record(EVENT_SUBMITTED, event, principal, from_status=before)
    return event_view(event)


async def approve_event(
    cmd: ApproveEvent, uow: EventsUnitOfWork, principal: Principal
) -> EventView:
    require_reviewer(principal, "approve")
    event = await _load(uow, cmd.event_id, principal, condition=cmd)
    before = event.state
    event.approve(by=principal)
    await uow.events.save(event)
    await uow.record(EVENT_APPROVED, event, principal, from_status=before)
    return event_view(event)


async def reject_event(cmd: RejectEvent, uow: EventsUnitOfWork, principal: Principal) -> EventView:
    require_reviewer(principal, "reject")
    event = await _load(uow, cmd.event_id, principal, condition=cmd)
    before = event.state
    event.reject(by=principal, reason=cmd.reason)
    await uow.events.save(event)
    await uow.record(EVENT_REJECTED, event, principal, from_status=before, reason=cmd.reason)
    return event_view(event)


async def event_history(
    cmd: EventHistory, uow: EventsUnitOfWork, principal: Principal
) -> HistoryView:
    """The event's entries, oldest first, for whoever may read the event."""
    event = await _load(uow, cmd.event_id, principal, for_update=False)
    event.ensure_visible_to(principal)
    rows = await uow.history.of(event.id, principal.organization_id)
    return HistoryView(
        data=[
            Entry.of({**row, "subject_type": "event", "subject_id": row["event_id"]})
            for row in rows
        ]
    )


async def _load(
    uow: EventsUnitOfWork,
    event_id: str,
    principal: Principal,
    *,
    for_update: bool = True,
    condition: Conditional | None = None,
) -> Event:
    """The event if it exists in the caller's organization; another tenant's is simply not found.
    Commands that change it hold its row until commit. A conditional command (If-Match) on an
    event the caller may see gets 412 when the event has changed since."""
    event = await uow.events.get(event_id, principal.organization_id, for_update=for_update)
    if event is None:
        raise EventNotFound()
    if condition is not None and condition.if_match is not None:
        event.ensure_visible_to(principal)
        condition.check_version(event.version)
    return event


def event_view(event: Event) -> EventView:
    return EventView(
        id=event.id,
        title=event.title,
        description=event.description,
        location=event.location,
        start_date=to_wire(event.start_date),
        end_date=to_wire(event.end_date),
        status=event.state,
        rejection_reason=event.rejection_reason,
        organization_id=event.organization_id,
        created_by_id=event.created_by_id,
        created_at=to_wire(event.created_at),
        updated_at=to_wire(event.updated_at),
        version=event.version,
    )
