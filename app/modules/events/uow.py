"""The events module's unit of work. The bus's transaction middleware commits; nothing here does."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.modules.events.repository import EventRepository


class EventsUnitOfWork:
    def __init__(self, session: AsyncSession) -> None:
        self.events = EventRepository(session)
