"""The command side's database layer on real SQLite files: atomic write transactions under
cancellation, one writer, point reads that never block the loop, datetimes that read back as the
schema's own (SQLAlchemy) writes store them, and the ping readiness calls (also on PostgreSQL)."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, closing
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from app.errors import Unavailable
from app.modules.events.model import EVENTS
from app.storage.connect import open_database
from app.storage.engine import create_engine, upgrade_to_head, write_transaction
from app.storage.port import Database, DuplicateRow, NothingChanged, Query
from tests.conftest import fresh_postgres_database

INSERT = Query(text("INSERT INTO notes VALUES (:v)"))
COUNT = Query(text("SELECT count(*) FROM notes"))
BY_VALUE = Query(text("SELECT v FROM notes WHERE v = :v"), point=True)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    path = tmp_path / "layer.db"
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("CREATE TABLE notes (v INTEGER NOT NULL UNIQUE)")
        db.commit()
    return path


@pytest.fixture
async def database(path: Path) -> AsyncIterator[Database]:
    database = open_database(f"sqlite+aiosqlite:///{path}")
    yield database
    await database.close()


async def count(database: Database) -> int:
    async with database.transaction(write=False) as tx:
        row = await tx.fetch_one(COUNT)
    assert row is not None
    return int(row[0])


async def test_cancelled_and_failed_write_transactions_never_leave_one_open(database: Database):
    """Many writers at once, some failing and some cancelled at any await (their COMMIT or
    ROLLBACK included): each transaction's two rows are there together or not at all, and the
    writer is never left inside a transaction."""
    chance = random.Random(7)
    unexpected: list[BaseException] = []
    finished = 0

    async def write(value: int) -> None:
        nonlocal finished
        try:
            async with database.transaction(write=True) as tx:
                await tx.fetch_one(COUNT)
                await tx.execute(INSERT, {"v": value})
                if chance.random() < 0.2:
                    raise ValueError("the handler failed")
                await tx.execute(INSERT, {"v": -value})
            finished += 1
        except (ValueError, asyncio.CancelledError):
            pass
        except Exception as exc:
            unexpected.append(exc)

    value = 0
    for _ in range(150):
        tasks = []
        for _ in range(10):
            value += 1
            tasks.append(asyncio.create_task(write(value)))
        # Cancel at a random point: before, during or after statements, COMMIT or ROLLBACK.
        await asyncio.sleep(chance.random() * 0.002)
        for task in tasks:
            if chance.random() < 0.3:
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    assert unexpected == []
    async with database.transaction(write=False) as tx:
        values = {row[0] for row in await tx.fetch_all(Query(text("SELECT v FROM notes")))}
    assert all(-v in values for v in values)  # pairs only: no half-written transaction
    assert len(values) >= 2 * finished
    async with database.transaction(write=True) as tx:  # the writer still works
        await tx.execute(INSERT, {"v": 10_000})


async def test_a_unique_violation_is_a_duplicate_row(database: Database):
    async with database.transaction(write=True) as tx:
        await tx.execute(INSERT, {"v": 1})
    with pytest.raises(DuplicateRow):
        async with database.transaction(write=True) as tx:
            await tx.execute(INSERT, {"v": 1})
    assert await count(database) == 1


async def test_a_point_read_that_would_wait_goes_to_a_thread_instead(
    database: Database, tmp_path: Path
):
    """The loop's own connection never waits (busy timeout 0): when SQLite says it would have
    to, the read runs on a reader thread. Here the loop's connection is pointed at a file that
    another connection holds an exclusive lock on, the way a busy reader would find it."""
    async with database.transaction(write=True) as tx:
        await tx.execute(INSERT, {"v": 5})
    locked = tmp_path / "locked.db"
    with closing(sqlite3.connect(locked, isolation_level=None)) as holder:
        holder.execute("CREATE TABLE notes (v INTEGER)")
        holder.execute("BEGIN EXCLUSIVE")
        busy = sqlite3.connect(locked, timeout=0, isolation_level=None)
        original = database.inline  # type: ignore[attr-defined]
        database.inline = busy  # type: ignore[attr-defined]
        try:
            async with database.transaction(write=False) as tx:
                found = await tx.fetch_one(BY_VALUE, {"v": 5})
        finally:
            database.inline = original  # type: ignore[attr-defined]
            busy.close()
            holder.execute("ROLLBACK")
    assert found == (5,)


async def test_datetimes_written_by_sqlalchemy_read_back_aware_and_equal(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'dates.db'}"
    engine = create_engine(url)
    await upgrade_to_head(engine)
    moment = datetime(2026, 9, 1, 9, 30, 15, 123456, tzinfo=UTC)
    row = {
        "id": "e1",
        "organization_id": "o",
        "created_by_id": "u",
        "title": "t",
        "description": "d",
        "location": None,
        "start_date": moment,
        "end_date": moment,
        "status": "DRAFT",
        "rejection_reason": None,
        "created_at": moment,
        "updated_at": moment,
    }
    async with write_transaction(engine) as session:
        await session.execute(EVENTS.insert(), row)
    await engine.dispose()
    database = open_database(url)
    try:
        select_one = Query(EVENTS.select().where(EVENTS.c.start_date == moment))
        async with database.transaction(write=False) as tx:
            found = await tx.fetch_one(select_one)
    finally:
        await database.close()
    assert found is not None
    assert found[6] == moment and found[6].tzinfo is not None


async def test_deferred_writes_commit_together_or_not_at_all(database: Database):
    async with database.transaction(write=True) as tx:
        await tx.defer(INSERT, {"v": 1})
        await tx.defer(INSERT, {"v": 2})
    assert await count(database) == 2

    with pytest.raises(DuplicateRow):  # the second deferred insert fails at COMMIT
        async with database.transaction(write=True) as tx:
            await tx.defer(INSERT, {"v": 3})
            await tx.defer(INSERT, {"v": 1})
    assert await count(database) == 2  # 3 was rolled back with it

    bump = Query(text("UPDATE notes SET v = v + 100 WHERE v = :v"))
    with pytest.raises(NothingChanged) as raised:
        async with database.transaction(write=True) as tx:
            await tx.defer(INSERT, {"v": 4})
            await tx.defer(bump, {"v": 99}, unchanged=NothingChanged)  # no such row
    assert raised.value.query is bump
    assert await count(database) == 2

    async with database.transaction(write=True) as tx:  # a deferred write is seen by later reads
        await tx.defer(INSERT, {"v": 5})
        assert await tx.fetch_one(COUNT) == (3,)
    assert await count(database) == 3


async def test_a_write_while_another_process_writes_waits_for_it_without_blocking_the_loop(
    database: Database, path: Path
):
    """A command's write runs on the loop's own connection, which never waits: with the lock
    held elsewhere it moves to the writer's thread and waits there, for as long as it takes."""
    with closing(sqlite3.connect(path, isolation_level=None)) as other_process:
        other_process.execute("BEGIN IMMEDIATE")
        other_process.execute("INSERT INTO notes VALUES (1)")

        async def write() -> None:
            async with database.transaction(write=True) as tx:
                await tx.execute(INSERT, {"v": 2})

        writing = asyncio.create_task(write())
        with pytest.raises(TimeoutError):  # the loop runs on (this timer fires) while it waits
            await asyncio.wait_for(asyncio.shield(writing), timeout=0.3)
        other_process.execute("COMMIT")
        await writing

    assert await count(database) == 2


async def test_the_write_ahead_log_stays_small_while_writes_run_on_the_loop(
    database: Database, path: Path
):
    """Commits on the loop's writer never checkpoint; the writer's thread does, every few
    hundred commits, so the log is reused instead of growing with every write."""

    async def write(value: int) -> None:
        async with database.transaction(write=True) as tx:
            await tx.execute(INSERT, {"v": value})

    for batch in range(200):  # as requests come: tasks of their own, ten at a time
        await asyncio.gather(*(write(batch * 10 + n) for n in range(10)))
    async with database.transaction(write=True, background=True) as tx:
        await tx.execute(INSERT, {"v": -1})  # queued behind the last checkpoint

    wal = path.with_name(path.name + "-wal")
    page = 4096
    assert wal.stat().st_size < 600 * 2 * page  # about one checkpoint's worth of commits
    assert await count(database) == 2001


async def test_commands_and_migrations_see_one_sqlite_configuration(database: Database, path: Path):
    """One list of PRAGMAs: the engine that migrates and seeds, and the connections commands run
    on (reads and writes), are set up alike."""
    settings = "SELECT * FROM pragma_journal_mode, pragma_synchronous, pragma_foreign_keys"
    async with database.transaction(write=False) as tx:
        read = tuple(await tx.fetch_one(Query(text(settings))) or ())
    async with database.transaction(write=True) as tx:
        written = tuple(await tx.fetch_one(Query(text(settings))) or ())
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.connect() as connection:
            migrating = tuple((await connection.exec_driver_sql(settings)).one())
    finally:
        await engine.dispose()

    assert read == written == migrating == ("wal", 1, 1)  # WAL, synchronous NORMAL, FKs on


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_ping_passes_on_the_migrated_database_and_fails_on_an_unmigrated_one(
    backend: str, tmp_path: Path
):
    async with AsyncExitStack() as stack:
        if backend == "sqlite":
            migrated_url = f"sqlite+aiosqlite:///{tmp_path / 'migrated.db'}"
            bare_url = f"sqlite+aiosqlite:///{tmp_path / 'bare.db'}"
        else:
            migrated_url = await stack.enter_async_context(fresh_postgres_database())
            bare_url = await stack.enter_async_context(fresh_postgres_database())
        engine = create_engine(migrated_url)
        await upgrade_to_head(engine)
        await engine.dispose()
        migrated, bare = open_database(migrated_url), open_database(bare_url)
        stack.push_async_callback(migrated.close)
        stack.push_async_callback(bare.close)

        await migrated.ping()
        with pytest.raises(Exception, match="alembic_version"):
            await bare.ping()


async def test_ping_fails_while_the_sqlite_file_is_not_the_one_the_connections_opened(
    database: Database, path: Path
):
    """Open connections keep reading and writing a file that was moved away; commands would
    write where nobody reads. The ping looks at the path, as a restart would."""
    async with database.transaction(write=True) as tx:
        await tx.execute(Query(text("CREATE TABLE alembic_version (v TEXT)")))
    await database.ping()

    moved = path.with_name("moved.db")
    replace_with_a_folder(path, moved)
    with pytest.raises(Unavailable):
        await database.ping()
    assert await count(database) == 0  # the old connections still answer: they would not tell

    put_back(path, moved)
    await database.ping()


def replace_with_a_folder(path: Path, moved: Path) -> None:
    path.rename(moved)
    path.mkdir()


def put_back(path: Path, moved: Path) -> None:
    path.rmdir()
    moved.rename(path)
