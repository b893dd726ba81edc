"""Data access for the auth module's own tables."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.modules.auth.model import Organization, User


class DuplicateRow(Exception):
    """A unique constraint refused the row (a concurrent request got there first)."""


class OrganizationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, organization_id: str) -> Organization | None:
        return await self._session.get(Organization, organization_id)

    async def slug_exists(self, slug: str) -> bool:
        found = await self._session.scalar(
            select(Organization.id).where(Organization.slug == slug).limit(1)
        )
        return found is not None

    async def add(self, organization: Organization) -> None:
        await _add(self._session, organization)


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, user_id: str) -> User | None:
        return await self._session.get(User, user_id)

    async def by_email(self, email: str) -> User | None:
        user: User | None = await self._session.scalar(select(User).where(User.email == email))
        return user

    async def add(self, user: User) -> None:
        await _add(self._session, user)


async def _add(session: AsyncSession, row: Organization | User) -> None:
    session.add(row)
    try:
        await session.flush([row])
    except IntegrityError:
        raise DuplicateRow from None
