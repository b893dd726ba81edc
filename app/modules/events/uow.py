"""The events module's unit of work. The bus's transaction middleware commits; nothing here does.

`record` writes a change into the event's history and emits it as a notification, both in the
command's transaction: a committed change always has its entry and its notification, a
rolled-back one neither. The entry's id is the notification's."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from app.bus.bus import Bus
from app.bus.contracts import Change, Topic
from app.identity import Principal
from app.modules.events.contracts import ACTIONS, EventStatus
from app.modules.events.model import Event
from app.modules.events.repository import EventRepository, HistoryRepository
from app.storage.port import Transaction


class EventsUnitOfWork:
    def __init__(self, tx: Transaction, bus: Bus) -> None:
        self.events = EventRepository(tx)
        self.history = HistoryRepository(tx)
        self._bus = bus

    async def record(
        self,
        topic: Topic,
        event: Event,
        principal: Principal,
        *,
        from_status: EventStatus | None,
        changes: dict[str, Change] | None = None,
        reason: str | None = None,
    ) -> None:
        to_status = None if topic.name == "events.deleted" else event.state
        note = await self._bus.emit(
            topic.name,
            topic.payload(
                event_id=event.id,
                organization_id=event.organization_id,
                from_status=from_status,
                to_status=to_status,
                changes=changes,
                reason=reason,
            ),
        )
        await self.history.add(
            {
                "id": note.id,
                "event_id": event.id,
                "organization_id": event.organization_id,
                "action": ACTIONS[topic.name],
                "actor_id": principal.user_id,
                "actor_role": principal.role,
                "from_status": from_status,
                "to_status": to_status,
                "changes": None if changes is None else msgspec.json.encode(changes).decode(),
                "reason": reason,
                "correlation_id": note.correlation_id,
                "at": datetime.fromtimestamp(note.occurred_at, UTC),
            }
        )
