"""Migrations: head builds the models' exact schema; start-up migrates and seeds idempotently,
also when several processes start on one fresh database at once."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from contextlib import closing
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text

import app.modules.auth.model
import app.modules.events.model  # noqa: F401  (register the tables)
from alembic import command
from app.main import create_app
from app.modules.events.model import outside_metadata
from app.storage.engine import create_engine, upgrade_to_head
from app.storage.schema import Base
from tests.conftest import fresh_postgres_database, make_settings, serve

ROOT = Path(__file__).resolve().parent.parent


def _drift(connection: Connection) -> list[object]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_name": outside_metadata}
    )
    return list(compare_metadata(context, Base.metadata))


async def test_upgrade_head_on_empty_database_then_no_drift(tmp_path: Path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}")
    try:
        await upgrade_to_head(engine)
        async with engine.connect() as connection:
            drift = await connection.run_sync(_drift)
            tables = await connection.run_sync(
                lambda c: set(c.exec_driver_sql("SELECT name FROM sqlite_master").scalars())
            )
            journal = (await connection.exec_driver_sql("PRAGMA journal_mode")).scalar()
    finally:
        await engine.dispose()

    assert drift == []
    assert {"auth_organizations", "auth_users", "events_events", "alembic_version"} <= tables
    assert journal == "wal"


async def test_upgrade_head_on_empty_postgresql_then_no_drift():
    async with fresh_postgres_database() as url:
        engine = create_engine(url)
        try:
            await upgrade_to_head(engine)
            await upgrade_to_head(engine)  # a second start finds it at head
            async with engine.connect() as connection:
                drift = await connection.run_sync(_drift)
                tables = set(
                    (
                        await connection.exec_driver_sql(
                            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                        )
                    ).scalars()
                )
        finally:
            await engine.dispose()

    assert drift == []
    assert {"auth_users", "events_events", "bus_idempotency_keys", "alembic_version"} <= tables


async def _counts(database: Path) -> tuple[int, int, int]:
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    try:
        async with engine.connect() as connection:
            result = []
            for table in ("auth_organizations", "auth_users", "events_events"):
                count = await connection.scalar(text(f"SELECT count(*) FROM {table}"))
                result.append(int(count or 0))
            return result[0], result[1], result[2]
    finally:
        await engine.dispose()


async def test_restarting_never_duplicates_seed_rows(tmp_path: Path):
    database = tmp_path / "restart.db"
    for _ in range(3):
        async with serve(create_app(make_settings(database))) as client:
            assert (await client.get("/health/live")).status_code == 200

    assert await _counts(database) == (2, 4, 3)


async def test_seeding_can_be_switched_off(tmp_path: Path):
    database = tmp_path / "empty.db"
    async with serve(create_app(make_settings(database, seed_demo_data=False))):
        pass

    assert await _counts(database) == (0, 0, 0)


STARTER = """
import asyncio, sys
from pathlib import Path
from app.main import create_app
from tests.conftest import fresh_postgres_database, make_settings, serve

async def main() -> None:
    async with serve(create_app(make_settings(Path(sys.argv[1])))) as client:
        response = await client.post(
            "/auth/login", json={"email": "admin@acme.com", "password": "Password123!"}
        )
        assert response.status_code == 200, response.text

asyncio.run(main())
"""


async def _start_process(database: Path) -> tuple[int | None, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        STARTER,
        str(database),
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode, err.decode()


async def test_several_processes_starting_at_once_migrate_and_seed_once(tmp_path: Path):
    database = tmp_path / "shared.db"

    results = await asyncio.gather(*(_start_process(database) for _ in range(4)))

    assert [code for code, _ in results] == [0, 0, 0, 0], [err[-2000:] for _, err in results]
    assert await _counts(database) == (2, 4, 3)


async def _tables(database: Path) -> set[str]:
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    try:
        async with engine.connect() as connection:
            result = await connection.exec_driver_sql("SELECT name FROM sqlite_master")
            return set(result.scalars())
    finally:
        await engine.dispose()


async def test_production_migrates_only_through_the_explicit_command(tmp_path: Path):
    database = tmp_path / "prod.db"
    settings = make_settings(database, app_env="production", seed_demo_data=False)
    async with serve(create_app(settings)):
        pass
    assert "events_events" not in await _tables(database)

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "alembic",
        "upgrade",
        "head",
        cwd=ROOT,
        env={"DATABASE_URL": settings.database_url, "PATH": "/usr/bin:/bin"},
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()

    async with serve(create_app(settings)) as client:
        response = await client.post(
            "/auth/signup",
            json={
                "email": "ops@prod.io",
                "password": "Operator123!",
                "firstName": "Op",
                "lastName": "Erator",
                "organizationName": "Prod Org",
            },
        )
    assert response.status_code == 201


def test_the_search_index_covers_events_written_before_it_and_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Migration 0003 indexes the events already there; its triggers follow later writes; and
    its downgrade removes it all."""
    database = tmp_path / "search.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{database}")
    monkeypatch.setenv("APP_ENV", "development")
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    row = (  # the columns of 0003, named: later migrations add more, with defaults
        "INSERT INTO events_events (id, organization_id, created_by_id, title, description, "
        "location, start_date, end_date, status, rejection_reason, created_at, updated_at) "
        "VALUES (?, 'o', 'u', ?, 'd', NULL, 's', 'e', 'DRAFT', NULL, 'c', 'u')"
    )

    def matches(text: str) -> list[str]:
        with closing(sqlite3.connect(database)) as db:
            return [
                found
                for (found,) in db.execute(
                    "SELECT i.event_id FROM events_search AS s JOIN events_search_ids AS i "
                    "ON i.search_rowid = s.rowid WHERE events_search MATCH ? ORDER BY 1",
                    (f'"{text}"',),
                )
            ]

    def write(*statements: tuple[str, tuple[str, ...]]) -> None:
        with closing(sqlite3.connect(database)) as db, db:
            for sql, args in statements:
                db.execute(sql, args)

    command.upgrade(config, "0002")
    write((row, ("before", "Written before the index")))
    command.upgrade(config, "head")
    write(
        (row, ("after", "Written after the index")),
        ("UPDATE events_events SET title = 'Renamed' WHERE id = ?", ("before",)),
    )

    assert matches("written") == ["after"]
    assert matches("renamed") == ["before"]
    write(("DELETE FROM events_events WHERE id = ?", ("after",)))
    assert matches("written") == []

    command.downgrade(config, "0002")
    with closing(sqlite3.connect(database)) as db:
        names = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    assert not {name for name in names if name.startswith("events_search")}
