"""Handler tests run on a real, migrated SQLite file, one transaction per test step."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.storage.connect import open_database
from app.storage.engine import create_engine, upgrade_to_head
from app.storage.port import Database, Transaction
from tests.conftest import fresh_postgres_database

Transactions = Callable[[], AbstractAsyncContextManager[Transaction]]
"""`async with tx() as t:` one write transaction, committed unless the block raises."""


@pytest.fixture(params=["sqlite", "postgresql"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """Each handler test runs on a SQLite file and on a fresh PostgreSQL database."""
    async with AsyncExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp_path / 'handlers.db'}"
        else:
            url = await stack.enter_async_context(fresh_postgres_database())
        engine = create_engine(url)
        await upgrade_to_head(engine)
        yield engine
        await engine.dispose()


@pytest.fixture
async def db(engine: AsyncEngine) -> AsyncIterator[Database]:
    """The app's database layer (what commands run on) over the migrated database."""
    database = open_database(engine.url.render_as_string(hide_password=False))
    yield database
    await database.close()


@pytest.fixture
def tx(db: Database) -> Transactions:
    return lambda: db.transaction(write=True)
