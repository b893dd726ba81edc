"""The SQLAlchemy engine, for migrations and start-up seeding (commands run on the drivers of
`app.storage.sqlite` and `app.storage.postgres` instead).

SQLite connections get the same PRAGMAs as the commands' (`sqlite_pragmas`). The driver's own
transaction handling is switched off so SQLAlchemy emits BEGIN itself: `BEGIN IMMEDIATE` for
writes (the migrations and seeding take the write lock up front and queue on the busy timeout
instead of failing on a lock upgrade), plain `BEGIN` for reads, which never block in WAL mode.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from app.storage.pragmas import SQLITE_BUSY_TIMEOUT_MS, sqlite_pragmas

WRITE_OPTION = "eventboard_write"
_PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent


def create_engine(database_url: str) -> AsyncEngine:
    """The engine for migrations and seeding."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return create_async_engine(url, pool_pre_ping=True)

    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN, see below
        cursor = dbapi_connection.cursor()
        for pragma in sqlite_pragmas(SQLITE_BUSY_TIMEOUT_MS):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        writes = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")

    return engine


@asynccontextmanager
async def write_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session in one write transaction, committed on success (for start-up work such as
    seeding)."""
    writes = engine.execution_options(**{WRITE_OPTION: True})
    async with AsyncSession(writes, expire_on_commit=False) as session, session.begin():
        yield session


def _alembic_config() -> Any:
    from alembic.config import Config

    config = Config(str(_PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(_PROJECT_ROOT / "alembic"))
    return config


def alembic_head() -> str:
    """The migration revision this code needs."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None, "the alembic folder has no migrations"
    return head


async def upgrade_to_head(engine: AsyncEngine) -> None:
    """Run Alembic migrations to head on this engine, serialised across processes.

    SQLite: the whole upgrade runs in one BEGIN IMMEDIATE transaction, so a second process that
    starts at the same moment waits for the write lock and then finds the schema at head.
    PostgreSQL: a transaction-scoped advisory lock does the same.
    """
    from alembic import command

    config = _alembic_config()

    def run(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7261844091)")
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    async with engine.connect() as connection:
        connection = await connection.execution_options(**{WRITE_OPTION: True})
        async with connection.begin():
            await connection.run_sync(run)
