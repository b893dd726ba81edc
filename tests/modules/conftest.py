"""Handler tests run on a real, migrated SQLite file, one transaction per test step."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db import create_engine, upgrade_to_head, write_transaction
from tests.conftest import fresh_postgres_database

Transactions = Callable[[], AbstractAsyncContextManager[AsyncSession]]
"""`async with tx() as session:` one write transaction, committed unless the block raises."""


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
def tx(engine: AsyncEngine) -> Transactions:
    return lambda: write_transaction(engine)
