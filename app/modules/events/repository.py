"""Data access for `events_events`: Core statements compiled once, run in the command's
transaction. The tenant is part of every query, never a check after it."""

from __future__ import annotations

import dataclasses
import functools

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from app.database import Query, Transaction
from app.modules.events.contracts import ListEvents
from app.modules.events.model import EVENTS, Event

_C = EVENTS.c
_TENANT = and_(_C.id == bindparam("event_id"), _C.organization_id == bindparam("tenant"))
_GET = Query(select(EVENTS).where(_TENANT), point=True)
_GET_FOR_UPDATE = Query(select(EVENTS).where(_TENANT).with_for_update())
_INSERT = Query(insert(EVENTS))
_MUTABLE = (
    "title",
    "description",
    "location",
    "start_date",
    "end_date",
    "status",
    "rejection_reason",
    "updated_at",
)
_UPDATE = Query(update(EVENTS).where(_TENANT).values({name: bindparam(name) for name in _MUTABLE}))
_DELETE = Query(delete(EVENTS).where(_TENANT))
_SORT_COLUMNS = {
    "createdAt": _C.created_at,
    "startDate": _C.start_date,
    "title": _C.title,
    "status": _C.status,
}


def _literal_like(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, with `%` and `_` taken literally (escaped with
    `/`, which both dialects read the same way, unlike a backslash)."""
    escaped = text.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return f"%{escaped}%"


class EventRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def get(
        self, event_id: str, organization_id: str, *, for_update: bool = False
    ) -> Event | None:
        """The tenant's event. `for_update` locks its row until commit (PostgreSQL; SQLite's
        write transactions are serialised already), so two concurrent transitions of one event
        cannot both start from the same state."""
        row = await self._tx.fetch_one(
            _GET_FOR_UPDATE if for_update else _GET,
            {"event_id": event_id, "tenant": organization_id},
        )
        return None if row is None else Event(*row)

    async def add(self, event: Event) -> None:
        """Written at commit at the latest (nothing here needs an answer from the database)."""
        await self._tx.defer(_INSERT, dataclasses.asdict(event))

    async def save(self, event: Event) -> None:
        """Write the event's changes (everything a command may change) back to its row, at
        commit at the latest; the row is the one `get(..., for_update=True)` locked."""
        params = {name: getattr(event, name) for name in _MUTABLE}
        await self._tx.defer(
            _UPDATE, {**params, "event_id": event.id, "tenant": event.organization_id}
        )

    async def delete(self, event: Event) -> None:
        await self._tx.defer(_DELETE, {"event_id": event.id, "tenant": event.organization_id})

    async def page(
        self, query: ListEvents, organization_id: str, created_by_id: str | None
    ) -> tuple[list[Event], int]:
        """One page of the tenant's events (only `created_by_id`'s when given) and the total:
        one statement, so one scan and one snapshot (the total rides along on every row). Only
        a page past the end, which has no rows to carry it, counts separately."""
        params: dict[str, object] = {
            "tenant": organization_id,
            "creator": created_by_id,
            "status": query.status,
            "pattern": _literal_like(query.search) if query.search else None,
            "start_from": query.start_date_from,
            "start_to": query.start_date_to,
            "offset": (query.page - 1) * query.limit,
            "limit": query.limit,
        }
        count, page = _page_queries(
            created_by_id is not None,
            query.status is not None,
            bool(query.search),
            query.start_date_from is not None,
            query.start_date_to is not None,
            query.sort_by,
            query.sort_order,
        )
        rows = await self._tx.fetch_all(page, params)
        if rows:
            return [Event(*row[:-1]) for row in rows], int(rows[0][-1])
        if query.page == 1:
            return [], 0
        total = await self._tx.fetch_one(count, params)
        return [], int(total[0]) if total else 0


@functools.cache
def _page_queries(
    own_only: bool,
    by_status: bool,
    search: bool,
    start_from: bool,
    start_to: bool,
    sort_by: str,
    sort_order: str,
) -> tuple[Query, Query]:
    """The count and page statements for one shape of listing (compiled once per shape and
    dialect)."""

    def conditions(dialect: str) -> list[ColumnElement[bool]]:
        found = [_C.organization_id == bindparam("tenant")]
        if own_only:
            found.append(_C.created_by_id == bindparam("creator"))
        if by_status:
            found.append(_C.status == bindparam("status"))
        if search:
            pattern: BindParameter[str] = bindparam("pattern")
            if dialect == "sqlite":  # LIKE is case-insensitive there already (ASCII, as lower())
                matches = [
                    _C.title.like(pattern, escape="/"),
                    _C.description.like(pattern, escape="/"),
                ]
            else:
                matches = [
                    _C.title.ilike(pattern, escape="/"),
                    _C.description.ilike(pattern, escape="/"),
                ]
            found.append(or_(*matches))
        if start_from:
            found.append(_C.start_date >= bindparam("start_from", type_=_C.start_date.type))
        if start_to:
            found.append(_C.start_date <= bindparam("start_to", type_=_C.start_date.type))
        return found

    def count(dialect: str) -> Select[tuple[int]]:
        return select(func.count()).select_from(EVENTS).where(*conditions(dialect))

    def page(dialect: str) -> Select[tuple[object, ...]]:
        column = _SORT_COLUMNS[sort_by]
        order = (
            (column.desc(), _C.id.desc()) if sort_order == "desc" else (column.asc(), _C.id.asc())
        )
        return (
            select(*EVENTS.c, func.count().over().label("total"))
            .where(*conditions(dialect))
            .order_by(*order)
            .offset(bindparam("offset"))
            .limit(bindparam("limit"))
        )

    return Query(count), Query(page)
