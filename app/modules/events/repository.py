"""Data access for `events_events`: Core statements compiled once, run in the command's
transaction. The tenant is part of every query, never a check after it."""

from __future__ import annotations

import functools

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    and_,
    bindparam,
    column,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    table,
    text,
    update,
)
from sqlalchemy.sql import operators
from sqlalchemy.sql.expression import UnaryExpression

from app.modules.events.contracts import ListEvents
from app.modules.events.model import EVENTS, HISTORY, Event
from app.storage.port import Query, Transaction

_C = EVENTS.c
_COLUMNS = tuple(EVENTS.c.keys())
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
    "version",
)
_UPDATE = Query(update(EVENTS).where(_TENANT).values({name: bindparam(name) for name in _MUTABLE}))
_DELETE = Query(delete(EVENTS).where(_TENANT))
_SORT_COLUMNS = {
    "createdAt": _C.created_at,
    "startDate": _C.start_date,
    "title": _C.title,
    "status": _C.status,
}


_SEARCH_IDS = table("events_search_ids", column("search_rowid"), column("event_id"))
_SEARCH = table("events_search", column("rowid"))
_INDEXED_SEARCH_MIN = 3
"""SQLite's trigram index (migration 0003) finds text of three characters or more; shorter
searches scan."""
_INDEXED_SEARCH_MAX_MATCHES = 2000
"""Beyond this many matches (in all organizations), reading the organization's events in one
scan is cheaper than looking each match up by id."""
_SEARCH_PROBE = Query(
    text(
        "SELECT count(*) FROM (SELECT 1 FROM events_search WHERE events_search MATCH :phrase "
        "LIMIT :cap)"
    )
)


def _phrase(text: str) -> str:
    """An FTS5 phrase matching `text` as it is (only `"` is special inside one)."""
    return '"' + text.replace('"', '""') + '"'


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
        await self._tx.defer(_INSERT, {name: getattr(event, name) for name in _COLUMNS})

    async def save(self, event: Event) -> None:
        """Write the event's changes (everything a command may change) back to its row, at
        commit at the latest; the row is the one `get(..., for_update=True)` locked. Every
        save is a change, so it bumps the event's version."""
        event.version += 1
        params = {name: getattr(event, name) for name in _MUTABLE}
        await self._tx.defer(
            _UPDATE, {**params, "event_id": event.id, "tenant": event.organization_id}
        )

    async def delete(self, event: Event) -> None:
        await self._tx.defer(_DELETE, {"event_id": event.id, "tenant": event.organization_id})

    async def _search_mode(self, search: str | None, params: dict[str, object]) -> str | None:
        """How to search: through SQLite's index when the text is long enough for it and rare
        enough that looking its events up one by one beats reading them all; else scan."""
        if not search:
            return None
        if self._tx.dialect != "sqlite" or len(search) < _INDEXED_SEARCH_MIN:
            return "scan"
        found = await self._tx.fetch_one(
            _SEARCH_PROBE, {"phrase": params["phrase"], "cap": _INDEXED_SEARCH_MAX_MATCHES}
        )
        return "indexed" if found and found[0] < _INDEXED_SEARCH_MAX_MATCHES else "scan"

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
            "needle": query.search.lower() if query.search else None,
            "phrase": _phrase(query.search) if query.search else None,
            "start_from": query.start_date_from,
            "start_to": query.start_date_to,
            "offset": (query.page - 1) * query.limit,
            "limit": query.limit,
        }
        count, page = _page_queries(
            created_by_id is not None,
            query.status is not None,
            await self._search_mode(query.search, params),
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


_H = HISTORY.c
_HISTORY_COLUMNS = tuple(HISTORY.c.keys())
_ADD_ENTRY = Query(insert(HISTORY))
_HISTORY = Query(
    select(HISTORY)
    .where(_H.event_id == bindparam("event_id"), _H.organization_id == bindparam("tenant"))
    .order_by(_H.at, _H.id)
)


class HistoryRepository:
    """`events_history`: each change of an event, in the tenant's scope."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def add(self, entry: dict[str, object]) -> None:
        """Written at commit at the latest, with the change it records."""
        await self._tx.defer(_ADD_ENTRY, {name: entry[name] for name in _HISTORY_COLUMNS})

    async def of(self, event_id: str, organization_id: str) -> list[dict[str, object]]:
        rows = await self._tx.fetch_all(_HISTORY, {"event_id": event_id, "tenant": organization_id})
        return [dict(zip(_HISTORY_COLUMNS, row, strict=True)) for row in rows]


def _no_index(column: ColumnElement[str]) -> ColumnElement[str]:
    """`+column`: SQLite then does not drive the query from the column's index, so the search
    index's few matches lead (looked up by id) instead of a walk over the whole organization."""
    return UnaryExpression(column, operator=operators.custom_op("+"), type_=column.type)


def _indexed_matches() -> Select[tuple[object]]:
    """The ids of events whose title or description contains the phrase (SQLite's index)."""
    return (
        select(_SEARCH_IDS.c.event_id)
        .join(_SEARCH, _SEARCH.c.rowid == _SEARCH_IDS.c.search_rowid)
        .where(literal_column("events_search").op("MATCH")(bindparam("phrase")))
    )


@functools.cache
def _page_queries(
    own_only: bool,
    by_status: bool,
    search: str | None,
    start_from: bool,
    start_to: bool,
    sort_by: str,
    sort_order: str,
) -> tuple[Query, Query]:
    """The count and page statements for one shape of listing (compiled once per shape and
    dialect)."""

    def conditions(dialect: str) -> list[ColumnElement[bool]]:
        indexed = search == "indexed" and dialect == "sqlite"
        tenant = _no_index(_C.organization_id) if indexed else _C.organization_id
        found = [tenant == bindparam("tenant")]
        if own_only:
            found.append(_C.created_by_id == bindparam("creator"))
        if by_status:
            found.append(_C.status == bindparam("status"))
        if indexed:
            found.append(_C.id.in_(_indexed_matches()))
        elif search:
            if dialect == "sqlite":  # its LIKE and lower() fold ASCII only: ours folds all
                needle: BindParameter[str] = bindparam("needle")
                matches = [
                    func.instr(func.unicode_lower(_C.title), needle) > 0,
                    func.instr(func.unicode_lower(_C.description), needle) > 0,
                ]
            else:  # ILIKE folds by the database's LC_CTYPE (a UTF-8 locale folds all)
                pattern: BindParameter[str] = bindparam("pattern")
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
