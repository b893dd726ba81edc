"""The database a URL names, with the driver for its dialect."""

from __future__ import annotations

from opentelemetry.trace import Tracer
from sqlalchemy.engine import make_url

from app.storage.port import Database
from app.storage.postgres import PostgresDatabase
from app.storage.sqlite import SqliteDatabase
from app.storage.tracing import TracedDatabase


def open_database(
    database_url: str, *, readers: int = 2, pool_size: int = 10, tracer: Tracer | None = None
) -> Database:
    """The database at `database_url` (connected at first use, or by `open()`). With a tracer,
    every statement is a span (`db.system`, `db.statement`; never the parameters)."""
    url = make_url(database_url)
    database: Database
    if url.get_backend_name() == "sqlite":
        database = SqliteDatabase(url.database or ":memory:", readers=readers)
    else:
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        database = PostgresDatabase(dsn, pool_size=pool_size)
    return database if tracer is None else TracedDatabase(database, tracer)
