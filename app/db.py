"""The SQLAlchemy engine (migrations and start-up seeding) and the shared column types.

SQLite runs in WAL mode with a busy timeout and foreign keys on. The driver's own transaction
handling is switched off so SQLAlchemy emits BEGIN itself: `BEGIN IMMEDIATE` for writes (the
migrations and seeding take the write lock up front and queue on the busy timeout instead of
failing on a lock upgrade), plain `BEGIN` for reads, which never block in WAL mode.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, MetaData, Table, event, insert
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.dml import Insert
from sqlalchemy.types import TypeDecorator

WRITE_OPTION = "eventboard_write"
_PROJECT_ROOT = Path(__file__).resolve().parent.parent
SQLITE_BUSY_TIMEOUT_MS = 5000

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python; UTC in the database.

    Naive UTC text on SQLite, `timestamptz` on PostgreSQL.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def sqlite_pragmas(busy_timeout_ms: int) -> tuple[str, ...]:
    """The settings of every SQLite connection, this engine's and the commands' (app.database)
    alike: WAL, synchronous NORMAL (durable at each checkpoint, safe against corruption),
    foreign keys on, and how long a statement waits for another process's lock."""
    return (
        f"PRAGMA busy_timeout = {busy_timeout_ms}",
        "PRAGMA journal_mode = WAL",
        "PRAGMA synchronous = NORMAL",
        "PRAGMA foreign_keys = ON",
    )


def create_engine(database_url: str, *, pooled: bool = True) -> AsyncEngine:
    """The app's engine; `pooled=False` opens a fresh connection for every use (for probes,
    which must prove the database can be reached now, not that an old connection still works)."""
    url = make_url(database_url)
    pool: dict[str, Any] = {} if pooled else {"poolclass": NullPool}
    if url.get_backend_name() != "sqlite":
        return create_async_engine(url, pool_pre_ping=pooled, **pool)

    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(
        url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **pool
    )

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
    """A session in one write transaction, committed on success (for start-up work such as seeding;
    commands run on `app.database` instead)."""
    writes = engine.execution_options(**{WRITE_OPTION: True})
    async with AsyncSession(writes, expire_on_commit=False) as session, session.begin():
        yield session


def insert_ignoring_conflicts(table: Table, dialect_name: str) -> Insert:
    """An INSERT that skips rows whose unique key exists: ON CONFLICT DO NOTHING on PostgreSQL,
    INSERT OR IGNORE on SQLite (SQLAlchemy 2.0 cannot cache SQLite's ON CONFLICT form, and
    compiling it costs more than the statement itself)."""
    if dialect_name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return insert(table).prefix_with("OR IGNORE")


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
