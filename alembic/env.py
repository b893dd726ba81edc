"""Alembic environment: async, batch mode on SQLite.

Called two ways: by the app at start-up (`app.storage.engine.upgrade_to_head`, which hands over
an open connection in `config.attributes["connection"]`), and from the command line, where the
database comes from DATABASE_URL like the app's.
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from sqlalchemy.engine import Connection

from alembic import context
from app.bus import idempotency as _idempotency  # noqa: F401  (registers bus_idempotency_keys)
from app.modules.audit import model as _audit_model  # noqa: F401  (registers tables)
from app.modules.auth import model as _auth_model  # noqa: F401  (registers tables)
from app.modules.events import model as _events_model
from app.settings import Settings
from app.storage.engine import create_engine
from app.storage.schema import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=_events_model.outside_metadata,
    )


def _run(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_command_line() -> None:
    engine = create_engine(Settings.from_env().database_url)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")

connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    if config.config_file_name is not None:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    asyncio.run(_run_from_command_line())
