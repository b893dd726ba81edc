"""The audit module's unit of work, over a subscriber's or a command's transaction."""

from __future__ import annotations

from app.modules.audit.repository import EntryRepository
from app.storage.port import Transaction


class AuditUnitOfWork:
    def __init__(self, tx: Transaction) -> None:
        self.entries = EntryRepository(tx)
