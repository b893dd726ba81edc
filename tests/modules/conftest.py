"""Handler tests run on a real, migrated SQLite file, one transaction per test step."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db import WRITE_OPTION, create_engine, create_session_factory, upgrade_to_head


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'handlers.db'}")
    await upgrade_to_head(engine)
    yield engine
    await engine.dispose()


class Transactions:
    """`async with tx() as session:` one committed write transaction, as the bus would run it."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._factory = create_session_factory(engine.execution_options(**{WRITE_OPTION: True}))

    def __call__(self) -> _Tx:
        return _Tx(self._factory())


class _Tx:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def __aenter__(self) -> AsyncSession:
        await self._session.__aenter__()
        await self._session.begin()
        return self._session

    async def __aexit__(self, *exc: object) -> None:
        if exc[0] is None:
            await self._session.commit()
        else:
            await self._session.rollback()
        await self._session.close()


@pytest.fixture
def tx(engine: AsyncEngine) -> Transactions:
    return Transactions(engine)
