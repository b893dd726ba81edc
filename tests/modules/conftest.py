"""Handler tests run on a real, migrated SQLite file, one transaction per test step."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db import create_engine, upgrade_to_head, write_transaction

Transactions = Callable[[], AbstractAsyncContextManager[AsyncSession]]
"""`async with tx() as session:` one write transaction, committed unless the block raises."""


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'handlers.db'}")
    await upgrade_to_head(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def tx(engine: AsyncEngine) -> Transactions:
    return lambda: write_transaction(engine)
