"""The transaction middleware: one transaction per command, committed or rolled back as a whole."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.bus.bus import Bus
from app.bus.pipeline import Context
from app.bus.testing import WireRoundTripTransport
from app.bus.transaction import TransactionMiddleware
from app.db import create_engine
from app.errors import Conflict


class Write(msgspec.Struct, frozen=True):
    value: str
    fail: bool = False


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'tx.db'}")
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE notes (value TEXT NOT NULL)"))
    yield engine
    await engine.dispose()


def make_bus(engine: AsyncEngine) -> Bus:
    async def write(cmd: Write, context: Context) -> int:
        assert context.session is not None
        await context.session.execute(text("INSERT INTO notes VALUES (:v)"), {"v": cmd.value})
        await context.session.execute(text("INSERT INTO notes VALUES (:v)"), {"v": cmd.value + "!"})
        if cmd.fail:
            raise Conflict("second thoughts")
        return 2

    bus = Bus(handle_middleware=[TransactionMiddleware(engine)])
    bus.register({"cmd": "notes.write"}, Write, write)
    bus.connect(WireRoundTripTransport(bus))
    return bus


async def rows(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        return list(
            (await connection.execute(text("SELECT value FROM notes ORDER BY 1"))).scalars()
        )


async def test_successful_command_commits_all_its_writes(engine: AsyncEngine):
    assert await make_bus(engine).send({"cmd": "notes.write"}, Write("a")) == 2

    assert await rows(engine) == ["a", "a!"]


async def test_failed_command_rolls_back_all_its_writes(engine: AsyncEngine):
    with pytest.raises(Conflict):
        await make_bus(engine).send({"cmd": "notes.write"}, Write("b", fail=True))

    assert await rows(engine) == []


async def test_writes_take_the_sqlite_write_lock_at_their_first_statement(engine: AsyncEngine):
    from sqlalchemy import event

    statements: list[str] = []
    event.listen(
        engine.sync_engine,
        "before_cursor_execute",
        lambda conn, cursor, statement, *rest: statements.append(statement),
    )

    await make_bus(engine).send({"cmd": "notes.write"}, Write("c"))

    assert statements[0] == "BEGIN IMMEDIATE"
    assert statements[1].startswith("INSERT")
