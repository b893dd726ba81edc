"""Start-up checks: the configuration meets the world before the process serves anything.

Each failure is one line naming the problem and its fix, and the process exits non-zero with no
traceback (a missing database, a wrong role, an unwritable SQLite path, a production database
behind the code's migrations, an unreachable NATS). The probes then report on the same
dependencies while the process runs (`/health/ready`), never with their error text.
"""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import nats
from sqlalchemy.engine import URL, make_url

from app.bus.transports.nats_connection import NatsServer
from app.settings import Settings
from app.storage.engine import alembic_head

CONNECT_TIMEOUT_SECONDS = 5.0


class StartupError(Exception):
    """A dependency the configuration names cannot be used; the message says how to fix it."""


def check(settings: Settings) -> None:
    """Run the checks to completion, from sync code; in a thread with a loop of its own, as the
    caller may be inside one (uvicorn imports the app from its running loop)."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, preflight(settings)).result()


async def preflight(settings: Settings) -> None:
    await _database(settings, at_head=settings.is_production)
    if settings.bus_transport == "nats":
        await check_nats(NatsServer.of(settings))


async def _database(settings: Settings, *, at_head: bool) -> None:
    """The database can be used; with `at_head`, it is at the code's migration head."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        current = _sqlite(url.database or "")
    else:
        current = await _postgresql(url)
    if at_head:
        head = alembic_head()
        if current != head:
            raise StartupError(
                f"the database is at migration {current or 'none (never migrated)'}, this code "
                f"needs {head}: run `make migrate` (with APP_ENV=production the server never "
                "migrates by itself)"
            )


async def problems(settings: Settings) -> list[str]:
    """Every problem, one line each, the database's migration checked whatever APP_ENV says
    (`eventboard check`)."""
    found = []
    try:
        await _database(settings, at_head=True)
    except StartupError as exc:
        found.append(str(exc))
    if settings.bus_transport == "nats":
        try:
            await check_nats(NatsServer.of(settings))
        except StartupError as exc:
            found.append(str(exc))
    return found


def _sqlite(path: str) -> str | None:
    """Open (or create) the file and take the write lock once; the schema's revision."""
    if path in ("", ":memory:"):
        return None
    where = f"the SQLite database {path}"
    fix = "set DATABASE_URL to a file in a folder this process can write"
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(f"cannot create the folder of {where} ({exc.strerror}); {fix}") from None
    try:
        with sqlite3.connect(path, timeout=CONNECT_TIMEOUT_SECONDS) as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute("ROLLBACK")
            return _revision(db)
    except sqlite3.Error as exc:
        raise StartupError(f"cannot write {where} ({exc}); {fix}") from None


def _revision(db: sqlite3.Connection) -> str | None:
    try:
        row = db.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:  # no such table: never migrated
        return None
    return str(row[0]) if row else None


async def _postgresql(url: URL) -> str | None:
    where = f"PostgreSQL at {url.host or 'localhost'}:{url.port or 5432}"
    try:
        connection = await asyncpg.connect(
            url.set(drivername="postgresql").render_as_string(hide_password=False),
            timeout=CONNECT_TIMEOUT_SECONDS,
        )
    except (OSError, TimeoutError) as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else exc.strerror or str(exc)
        raise StartupError(
            f"cannot reach {where} ({reason}): is it running, and is DATABASE_URL's host right?"
        ) from None
    except asyncpg.InvalidCatalogNameError:
        raise StartupError(
            f"{where} has no database {url.database!r}: create it or fix DATABASE_URL"
        ) from None
    except (asyncpg.InvalidAuthorizationSpecificationError, asyncpg.InvalidPasswordError) as exc:
        raise StartupError(
            f"{where} refused the role {url.username!r} ({exc}): fix DATABASE_URL's user "
            "and password"
        ) from None
    except asyncpg.PostgresError as exc:
        raise StartupError(f"{where} refused the connection ({exc}): check DATABASE_URL") from None
    try:
        exists = await connection.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL")
        if not exists:
            return None
        revision = await connection.fetchval("SELECT version_num FROM alembic_version")
        return str(revision) if revision is not None else None
    finally:
        await connection.close()


async def check_nats(server: NatsServer) -> None:
    """NATS answers at `server`, over TLS and with credentials when it says so."""
    try:
        client = await nats.connect(
            **server.options(),
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            allow_reconnect=False,
            max_reconnect_attempts=1,  # 0 would mean "retry for ever"
            error_cb=_quiet,
        )
    except Exception as exc:  # nats-py raises several kinds: each means "not reachable"
        raise StartupError(
            f"cannot reach NATS at {server.shown} ({type(exc).__name__}): is it running, "
            "and are NATS_URL and NATS_TLS_* right?"
        ) from None
    await client.close()


async def _quiet(error: Exception) -> None:
    """nats-py logs each failed attempt with a traceback by default; the check says it once."""
