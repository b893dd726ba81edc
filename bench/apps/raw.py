"""The reference: a bare Litestar app doing the same database work with raw aiosqlite on one
connection (WAL, `synchronous=NORMAL`), with no auth, bus, validation or logging.

    BENCH_DB=path/to.db BENCH_ORG=<organization id> uvicorn bench.apps.raw:app

- `GET /events/{id}`: the row by primary key and tenant, as JSON;
- `POST /events`: insert a DRAFT event, one commit per request, 201 with the row;
- `GET /events?search=...&limit=20`: the count and the first page of a case-insensitive title
  or description search, newest first, scanning with LIKE (no search index).
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from typing import Any

import aiosqlite
from litestar import Litestar, get, post

COLUMNS = (
    "id",
    "organization_id",
    "created_by_id",
    "title",
    "description",
    "location",
    "start_date",
    "end_date",
    "status",
    "rejection_reason",
    "created_at",
    "updated_at",
)
FIND = (
    "SELECT id, organization_id, created_by_id, title, description, location, start_date, "
    "end_date, status, rejection_reason, created_at, updated_at FROM events_events "
    "WHERE id = ? AND organization_id = ?"
)
INSERT = (
    "INSERT INTO events_events (id, organization_id, created_by_id, title, description, "
    "location, start_date, end_date, status, rejection_reason, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
MATCHES = (
    "WHERE organization_id = ? AND (lower(title) LIKE lower(?) ESCAPE '/' "
    "OR lower(description) LIKE lower(?) ESCAPE '/')"
)
COUNT = "SELECT count(*) FROM events_events " + MATCHES  # noqa: S608 (constants only)
PAGE = (
    "SELECT id, organization_id, created_by_id, title, description, location, start_date, "  # noqa: S608
    "end_date, status, rejection_reason, created_at, updated_at FROM events_events "
    + MATCHES
    + " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET 0"
)
ORG = os.environ.get("BENCH_ORG", "")
CREATOR = os.environ.get("BENCH_USER", "")
_db: aiosqlite.Connection | None = None


async def connect() -> None:
    global _db
    _db = await aiosqlite.connect(os.environ["BENCH_DB"])
    await _db.execute("PRAGMA journal_mode = WAL")
    await _db.execute("PRAGMA synchronous = NORMAL")
    await _db.execute("PRAGMA busy_timeout = 5000")


async def close() -> None:
    if _db is not None:
        await _db.close()


def db() -> aiosqlite.Connection:
    assert _db is not None
    return _db


@get("/events/{event_id:str}")
async def find(event_id: str) -> dict[str, Any]:
    rows = await db().execute_fetchall(FIND, (event_id, ORG))
    return dict(zip(COLUMNS, next(iter(rows)), strict=True))


@post("/events")
async def create(data: dict[str, Any]) -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    row = (
        str(uuid.uuid4()),
        ORG,
        CREATOR,
        data["title"],
        data["description"],
        data.get("location"),
        data["startDate"],
        data["endDate"],
        "DRAFT",
        None,
        now,
        now,
    )
    await db().execute(INSERT, row)
    await db().commit()
    return dict(zip(COLUMNS, row, strict=True))


@get("/events")
async def search(search: str, limit: int = 20) -> dict[str, Any]:
    pattern = f"%{search}%"
    args = (ORG, pattern, pattern)
    total = await db().execute_fetchall(COUNT, args)
    rows = await db().execute_fetchall(PAGE, (*args, limit))
    return {
        "data": [dict(zip(COLUMNS, row, strict=True)) for row in rows],
        "total": next(iter(total))[0],
    }


app = Litestar([find, create, search], on_startup=[connect], on_shutdown=[close])
