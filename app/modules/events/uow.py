"""The events module's unit of work. The bus's transaction middleware commits; nothing here does."""

from __future__ import annotations

from app.modules.events.repository import EventRepository
from app.storage.port import Transaction


class EventsUnitOfWork:
    def __init__(self, tx: Transaction) -> None:
        self.events = EventRepository(tx)
