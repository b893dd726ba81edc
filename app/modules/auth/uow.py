"""The auth module's unit of work: its repositories over the command's transaction.

The bus's transaction middleware owns the transaction; nothing here commits.
"""

from __future__ import annotations

from typing import Any

from app.bus.bus import Bus
from app.bus.contracts import Topic
from app.identity import Principal
from app.modules.auth.repository import OrganizationRepository, UserRepository
from app.storage.port import Transaction


class AuthUnitOfWork:
    def __init__(self, tx: Transaction, bus: Bus) -> None:
        self.organizations = OrganizationRepository(tx)
        self.users = UserRepository(tx)
        self._bus = bus

    async def emit(
        self, topic: Topic, notification: Any, *, actor: Principal | None = None
    ) -> None:
        """Emit a notification in the command's transaction (published once it commits)."""
        await self._bus.emit(topic.name, notification, actor=actor)
