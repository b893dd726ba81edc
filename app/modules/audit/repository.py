"""Data access for `audit_entries`: the tenant is part of every query."""

from __future__ import annotations

import functools

from sqlalchemy import ColumnElement, Select, bindparam, func, insert, select

from app.modules.audit.contracts import ListAudit
from app.modules.audit.model import ENTRIES
from app.storage.port import Query, Row, Transaction

_C = ENTRIES.c
COLUMNS = tuple(ENTRIES.c.keys())
_ADD = Query(insert(ENTRIES))


class EntryRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def add(self, entry: dict[str, object]) -> None:
        await self._tx.defer(_ADD, {name: entry[name] for name in COLUMNS})

    async def page(self, query: ListAudit, organization_id: str) -> tuple[list[Row], int]:
        """One page of the tenant's entries, newest first, and the total (riding on each row)."""
        params: dict[str, object] = {
            "tenant": organization_id,
            "action": query.action,
            "actor": query.actor_id,
            "subject": query.subject_id,
            "from": query.from_,
            "to": query.to,
            "offset": (query.page - 1) * query.limit,
            "limit": query.limit,
        }
        count, page = _queries(
            query.action is not None,
            query.actor_id is not None,
            query.subject_id is not None,
            query.from_ is not None,
            query.to is not None,
        )
        rows = await self._tx.fetch_all(page, params)
        if rows:
            return [row[:-1] for row in rows], int(rows[0][-1])
        if query.page == 1:
            return [], 0
        total = await self._tx.fetch_one(count, params)
        return [], int(total[0]) if total else 0


@functools.cache
def _queries(
    action: bool, actor: bool, subject: bool, since: bool, until: bool
) -> tuple[Query, Query]:
    """The count and page statements for one combination of filters (compiled once)."""
    found: list[ColumnElement[bool]] = [_C.organization_id == bindparam("tenant")]
    if action:
        found.append(_C.action == bindparam("action"))
    if actor:
        found.append(_C.actor_id == bindparam("actor"))
    if subject:
        found.append(_C.subject_id == bindparam("subject"))
    if since:
        found.append(_C.at >= bindparam("from", type_=_C.at.type))
    if until:
        found.append(_C.at <= bindparam("to", type_=_C.at.type))
    count: Select[tuple[int]] = select(func.count()).select_from(ENTRIES).where(*found)
    page = (
        select(*ENTRIES.c, func.count().over().label("total"))
        .where(*found)
        .order_by(_C.at.desc(), _C.id.desc())
        .offset(bindparam("offset"))
        .limit(bindparam("limit"))
    )
    return Query(count), Query(page)
