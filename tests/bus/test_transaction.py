"""The transaction middleware: one transaction per command, committed or rolled back as a whole."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import msgspec
import pytest
from sqlalchemy import text

from app.bus.bus import Bus
from app.bus.pipeline import Context
from app.bus.transaction import TransactionMiddleware
from app.bus.transports.wire import WireRoundTripTransport
from app.errors import Conflict
from app.storage.connect import open_database
from app.storage.port import Database, Query


class Write(msgspec.Struct, frozen=True):
    value: str
    fail: bool = False


NOTE = Query(text("INSERT INTO notes VALUES (:v)"))
NOTES = Query(text("SELECT value FROM notes ORDER BY 1"))


@pytest.fixture
async def path(tmp_path: Path) -> Path:
    path = tmp_path / "tx.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (value TEXT NOT NULL)")
    return path


@pytest.fixture
async def database(path: Path) -> AsyncIterator[Database]:
    database = open_database(f"sqlite+aiosqlite:///{path}")
    yield database
    await database.close()


def make_bus(database: Database, started: asyncio.Event | None = None) -> Bus:
    async def write(cmd: Write, context: Context) -> int:
        assert context.tx is not None
        await context.tx.execute(NOTE, {"v": cmd.value})
        if started is not None:
            started.set()
            await asyncio.Event().wait()  # until cancelled
        await context.tx.execute(NOTE, {"v": cmd.value + "!"})
        if cmd.fail:
            raise Conflict("second thoughts")
        return 2

    bus = Bus(handle_middleware=[TransactionMiddleware(database)])
    bus.register({"cmd": "notes.write"}, Write, write)
    bus.connect(WireRoundTripTransport(bus))
    return bus


async def rows(database: Database) -> list[str]:
    async with database.transaction(write=False) as tx:
        return [row[0] for row in await tx.fetch_all(NOTES)]


async def test_successful_command_commits_all_its_writes(database: Database):
    assert await make_bus(database).send({"cmd": "notes.write"}, Write("a")) == 2

    assert await rows(database) == ["a", "a!"]


async def test_failed_command_rolls_back_all_its_writes(database: Database):
    with pytest.raises(Conflict):
        await make_bus(database).send({"cmd": "notes.write"}, Write("b", fail=True))

    assert await rows(database) == []


async def test_a_write_holds_the_sqlite_write_lock_from_its_first_statement(
    database: Database, path: Path
):
    """Another process cannot write while a command is between its statements; before the
    first statement, and after the rollback of a cancelled command, it can."""

    def other_process_can_write() -> bool:
        with closing(sqlite3.connect(path, timeout=0, isolation_level=None)) as other:
            try:
                other.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:
                return False
            other.execute("ROLLBACK")
            return True

    started = asyncio.Event()
    command = asyncio.create_task(
        make_bus(database, started).send({"cmd": "notes.write"}, Write("c"))
    )
    await started.wait()
    assert not other_process_can_write()
    command.cancel()
    with pytest.raises(asyncio.CancelledError):
        await command
    await make_bus(database).send({"cmd": "notes.write"}, Write("d"))  # the writer is free

    assert other_process_can_write()
    assert await rows(database) == ["d", "d!"]  # the cancelled command left nothing
