"""Data access for the auth module's own tables: Core statements compiled once, run in the
command's transaction. The organization is part of every member query, never a check after it."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)

from app.identity import Role
from app.modules.auth.contracts import ListMembers
from app.modules.auth.model import ORGANIZATIONS, USERS, Organization, User
from app.storage.port import DuplicateRow, Query, Transaction

_ORGANIZATION = Query(
    select(ORGANIZATIONS).where(ORGANIZATIONS.c.id == bindparam("id")), point=True
)
_ORGANIZATION_BY_SLUG = Query(
    select(ORGANIZATIONS).where(ORGANIZATIONS.c.slug == bindparam("slug")), point=True
)
_SLUG_TAKEN = Query(
    select(ORGANIZATIONS.c.id).where(ORGANIZATIONS.c.slug == bindparam("slug")).limit(1)
)
_ADD_ORGANIZATION = Query(insert(ORGANIZATIONS))
_USER = Query(select(USERS).where(USERS.c.id == bindparam("id")), point=True)
_USER_BY_EMAIL = Query(select(USERS).where(USERS.c.email == bindparam("email")), point=True)
_ADD_USER = Query(insert(USERS))
_U = USERS.c
_IN_TENANT = and_(_U.id == bindparam("id"), _U.organization_id == bindparam("tenant"))
_MEMBER = Query(select(USERS).where(_IN_TENANT), point=True)
_LOCK_ORGANIZATION = Query(
    select(ORGANIZATIONS.c.id).where(ORGANIZATIONS.c.id == bindparam("tenant")).with_for_update()
)
_ACTIVE_ADMINS = Query(
    select(func.count())
    .select_from(USERS)
    .where(
        _U.organization_id == bindparam("tenant"),
        _U.role == Role.ADMIN.value,
        _U.active.is_(True),
    )
)
_MEMBER_COUNT = Query(
    select(func.count()).select_from(USERS).where(_U.organization_id == bindparam("tenant"))
)
_SAVE_MEMBER = Query(
    update(USERS)
    .where(_IN_TENANT)
    .values(
        role=bindparam("role"),
        active=bindparam("active"),
        version=bindparam("version"),
        updated_at=bindparam("updated_at"),
    )
)
_SORT_COLUMNS = {
    "createdAt": _U.created_at,
    "email": _U.email,
    "lastName": _U.last_name,
    "role": _U.role,
}


class OrganizationRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def get(self, organization_id: str) -> Organization | None:
        row = await self._tx.fetch_one(_ORGANIZATION, {"id": organization_id})
        return None if row is None else Organization(**_named(ORGANIZATIONS.c.keys(), row))

    async def by_slug(self, slug: str) -> Organization | None:
        row = await self._tx.fetch_one(_ORGANIZATION_BY_SLUG, {"slug": slug})
        return None if row is None else Organization(**_named(ORGANIZATIONS.c.keys(), row))

    async def slug_exists(self, slug: str) -> bool:
        return await self._tx.fetch_one(_SLUG_TAKEN, {"slug": slug}) is not None

    async def add(self, organization: Organization) -> None:
        """Raises `DuplicateRow` if the slug was taken meanwhile."""
        await self._tx.execute(_ADD_ORGANIZATION, _values(ORGANIZATIONS.c.keys(), organization))

    async def lock(self, organization_id: str) -> None:
        """Serialise changes of the organization's members until the transaction ends (on
        PostgreSQL a row lock; SQLite's write transactions are serial already), so two admins
        demoting each other at once cannot leave the organization without one."""
        await self._tx.fetch_one(_LOCK_ORGANIZATION, {"tenant": organization_id})

    async def member_count(self, organization_id: str) -> int:
        row = await self._tx.fetch_one(_MEMBER_COUNT, {"tenant": organization_id})
        return int(row[0]) if row else 0


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

    async def member(self, user_id: str, organization_id: str) -> User | None:
        """The organization's member `user_id`; another organization's is None."""
        row = await self._tx.fetch_one(_MEMBER, {"id": user_id, "tenant": organization_id})
        return None if row is None else User(**_named(USERS.c.keys(), row))

    async def active_admins(self, organization_id: str) -> int:
        row = await self._tx.fetch_one(_ACTIVE_ADMINS, {"tenant": organization_id})
        return int(row[0]) if row else 0

    async def save_member(self, user: User) -> None:
        await self._tx.execute(
            _SAVE_MEMBER,
            {
                "id": user.id,
                "tenant": user.organization_id,
                "role": user.role,
                "active": user.active,
                "version": user.version,
                "updated_at": user.updated_at,
            },
        )

    async def page(self, query: ListMembers, organization_id: str) -> tuple[list[User], int]:
        """One page of the organization's members and the total, in one statement."""
        params: dict[str, object] = {
            "tenant": organization_id,
            "role": query.role.value if query.role else None,
            "active": query.active,
            "pattern": _like(query.search) if query.search else None,
            "offset": (query.page - 1) * query.limit,
            "limit": query.limit,
        }
        count, page = _member_queries(
            query.role is not None,
            query.active is not None,
            query.search is not None,
            query.sort_by,
            query.sort_order,
        )
        rows = await self._tx.fetch_all(page, params)
        names = USERS.c.keys()
        if rows:
            return [User(**_named(names, row[:-1])) for row in rows], int(rows[0][-1])
        if query.page == 1:
            return [], 0
        total = await self._tx.fetch_one(count, params)
        return [], int(total[0]) if total else 0


def _like(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its own % and _ taken literally (escape `/`)."""
    escaped = text.lower().replace("/", "//").replace("%", "/%").replace("_", "/_")
    return f"%{escaped}%"


@functools.cache
def _member_queries(
    by_role: bool, by_active: bool, search: bool, sort_by: str, sort_order: str
) -> tuple[Query, Query]:
    """The count and page statements for one shape of member listing (per dialect: SQLite's
    own lower() folds ASCII only, so there the search folds with the connection's
    `unicode_lower`)."""

    def conditions(dialect: str) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = [_U.organization_id == bindparam("tenant")]
        if by_role:
            found.append(_U.role == bindparam("role"))
        if by_active:
            found.append(_U.active == bindparam("active"))
        if search:
            lower = func.unicode_lower if dialect == "sqlite" else func.lower
            pattern: BindParameter[str] = bindparam("pattern")
            found.append(
                or_(
                    *(
                        lower(column).like(pattern, escape="/")
                        for column in (_U.email, _U.first_name, _U.last_name)
                    )
                )
            )
        return found

    def count(dialect: str) -> Select[tuple[int]]:
        return select(func.count()).select_from(USERS).where(*conditions(dialect))

    def page(dialect: str) -> Select[tuple[object, ...]]:
        column = _SORT_COLUMNS[sort_by]
        order = (
            (column.desc(), _U.id.desc()) if sort_order == "desc" else (column.asc(), _U.id.asc())
        )
        return (
            select(*USERS.c, func.count().over().label("total"))
            .where(*conditions(dialect))
            .order_by(*order)
            .offset(bindparam("offset"))
            .limit(bindparam("limit"))
        )

    return Query(count), Query(page)


def _values(names: list[str], row: object) -> dict[str, Any]:
    """The row's column values (`dataclasses.asdict` would deep-copy each one)."""
    return {name: getattr(row, name) for name in names}


def _named(names: list[str], row: Sequence[Any]) -> dict[str, Any]:
    return dict(zip(names, row, strict=True))


__all__ = ["DuplicateRow", "OrganizationRepository", "UserRepository"]
