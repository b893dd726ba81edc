"""The auth module's unit of work: its repositories over the command's session.

The bus's transaction middleware owns the transaction; nothing here commits.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.modules.auth.repository import OrganizationRepository, UserRepository


class AuthUnitOfWork:
    def __init__(self, session: AsyncSession) -> None:
        self.organizations = OrganizationRepository(session)
        self.users = UserRepository(session)
