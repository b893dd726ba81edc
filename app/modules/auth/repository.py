"""Data access for the auth module's own tables: Core statements compiled once, run in the
command's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, insert, select

from app.modules.auth.model import ORGANIZATIONS, USERS, Organization, User
from app.storage.port import DuplicateRow, Query, Transaction

_ORGANIZATION = Query(
    select(ORGANIZATIONS).where(ORGANIZATIONS.c.id == bindparam("id")), point=True
)
_SLUG_TAKEN = Query(
    select(ORGANIZATIONS.c.id).where(ORGANIZATIONS.c.slug == bindparam("slug")).limit(1)
)
_ADD_ORGANIZATION = Query(insert(ORGANIZATIONS))
_USER = Query(select(USERS).where(USERS.c.id == bindparam("id")), point=True)
_USER_BY_EMAIL = Query(select(USERS).where(USERS.c.email == bindparam("email")), point=True)
_ADD_USER = Query(insert(USERS))


class OrganizationRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def get(self, organization_id: str) -> Organization | None:
        row = await self._tx.fetch_one(_ORGANIZATION, {"id": organization_id})
        return None if row is None else Organization(**_named(ORGANIZATIONS.c.keys(), row))

    async def slug_exists(self, slug: str) -> bool:
        return await self._tx.fetch_one(_SLUG_TAKEN, {"slug": slug}) is not None

    async def add(self, organization: Organization) -> None:
        """Raises `DuplicateRow` if the slug was taken meanwhile."""
        await self._tx.execute(_ADD_ORGANIZATION, _values(ORGANIZATIONS.c.keys(), organization))


class UserRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def get(self, user_id: str) -> User | None:
        row = await self._tx.fetch_one(_USER, {"id": user_id})
        return None if row is None else User(**_named(USERS.c.keys(), row))

    async def by_email(self, email: str) -> User | None:
        row = await self._tx.fetch_one(_USER_BY_EMAIL, {"email": email})
        return None if row is None else User(**_named(USERS.c.keys(), row))

    async def add(self, user: User) -> None:
        """Raises `DuplicateRow` if the email was taken meanwhile."""
        await self._tx.execute(_ADD_USER, _values(USERS.c.keys(), user))


def _values(names: list[str], row: object) -> dict[str, Any]:
    """The row's column values (`dataclasses.asdict` would deep-copy each one)."""
    return {name: getattr(row, name) for name in names}


def _named(names: list[str], row: Sequence[Any]) -> dict[str, Any]:
    return dict(zip(names, row, strict=True))


__all__ = ["DuplicateRow", "OrganizationRepository", "UserRepository"]
