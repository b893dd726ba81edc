"""Handler tests run on a real, migrated SQLite file, one transaction per test step."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    AsyncExitStack,
    asynccontextmanager,
    contextmanager,
)
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.bus.bus import Bus
from app.bus.envelope import Envelope
from app.bus.pipeline import HANDLING, Context
from app.modules.auth.contracts import TOPICS as AUTH_TOPICS
from app.modules.events.contracts import TOPICS as EVENT_TOPICS
from app.storage.connect import open_database
from app.storage.engine import create_engine, upgrade_to_head
from app.storage.port import Database, Transaction
from tests.conftest import fresh_postgres_database

Transactions = Callable[[], AbstractAsyncContextManager[Transaction]]
"""`async with tx() as t:` one write transaction, committed unless the block raises, open as a
command's is (so `bus.emit` writes to the outbox in it)."""

BUS = Bus()
"""The bus the handlers under test emit on: every module's notifications declared."""
for _topic in (*AUTH_TOPICS, *EVENT_TOPICS):
    BUS.declare(_topic)


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


@contextmanager
def handling(t: Transaction) -> Iterator[None]:
    """`t` open as a command's transaction is: what handlers emit goes to the outbox in it."""
    envelope: Envelope[None] = Envelope(
        pattern="test.step", payload=None, message_id="m", correlation_id="test-step"
    )
    token = HANDLING.set(Context(envelope=envelope, read_only=False, tx=t))
    try:
        yield
    finally:
        HANDLING.reset(token)


@pytest.fixture
def tx(db: Database) -> Transactions:
    @asynccontextmanager
    async def command() -> AsyncIterator[Transaction]:
        async with db.transaction(write=True) as t:
            with handling(t):
                yield t

    return command
