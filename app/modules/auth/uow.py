"""The auth module's unit of work: its repositories over the command's transaction.

The bus's transaction middleware owns the transaction; nothing here commits.
"""

from __future__ import annotations

from app.modules.auth.repository import OrganizationRepository, UserRepository
from app.storage.port import Transaction


class AuthUnitOfWork:
    def __init__(self, tx: Transaction) -> None:
        self.organizations = OrganizationRepository(tx)
        self.users = UserRepository(tx)
