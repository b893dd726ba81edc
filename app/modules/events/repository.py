"""Data access for `events_events`. The tenant is part of every query, never a check after it."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.modules.events.contracts import ListEvents
from app.modules.events.model import Event

_SORT_COLUMNS = {
    "createdAt": Event.created_at,
    "startDate": Event.start_date,
    "title": Event.title,
    "status": Event.status,
}


def _literal_like(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, with `%`, `_` and `\\` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class EventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(
        self, event_id: str, organization_id: str, *, for_update: bool = False
    ) -> Event | None:
        """The tenant's event. `for_update` locks its row until commit (PostgreSQL; SQLite's
        write transactions are serialised already), so two concurrent transitions of one event
        cannot both start from the same state."""
        query = select(Event).where(Event.id == event_id, Event.organization_id == organization_id)
        event: Event | None = await self._session.scalar(
            query.with_for_update() if for_update else query
        )
        return event

    def add(self, event: Event) -> None:
        self._session.add(event)

    async def delete(self, event: Event) -> None:
        await self._session.delete(event)

    async def page(
        self, query: ListEvents, organization_id: str, created_by_id: str | None
    ) -> tuple[Sequence[Event], int]:
        """One page of the tenant's events (only `created_by_id`'s when given) and the total."""
        conditions: list[ColumnElement[bool]] = [Event.organization_id == organization_id]
        if created_by_id is not None:
            conditions.append(Event.created_by_id == created_by_id)
        if query.status is not None:
            conditions.append(Event.status == query.status)
        if query.search:
            pattern = _literal_like(query.search)
            conditions.append(
                or_(
                    Event.title.ilike(pattern, escape="\\"),
                    Event.description.ilike(pattern, escape="\\"),
                )
            )
        if query.start_date_from is not None:
            conditions.append(Event.start_date >= query.start_date_from)
        if query.start_date_to is not None:
            conditions.append(Event.start_date <= query.start_date_to)

        total = await self._session.scalar(
            select(func.count()).select_from(Event).where(*conditions)
        )
        column = _SORT_COLUMNS[query.sort_by]
        ordered: Select[tuple[Event]] = select(Event).where(*conditions)
        if query.sort_order == "desc":
            ordered = ordered.order_by(column.desc(), Event.id.desc())
        else:
            ordered = ordered.order_by(column.asc(), Event.id.asc())
        rows = await self._session.scalars(
            ordered.offset((query.page - 1) * query.limit).limit(query.limit)
        )
        return rows.all(), total or 0
