"""The events module's unit of work. The bus's transaction middleware commits; nothing here does."""

from __future__ import annotations

from app.database import Transaction
from app.modules.events.repository import EventRepository


class EventsUnitOfWork:
    def __init__(self, tx: Transaction) -> None:
        self.events = EventRepository(tx)
