"""PostgreSQL: command transactions on an asyncpg pool, running the SQL the port compiled once.
A write holds one connection in one transaction; a read uses autocommit statements."""

from __future__ import annotations

import asyncio
import re
from contextlib import AbstractAsyncContextManager
from typing import Any

from app.errors import Timeout, Unavailable
from app.storage.committing import Committing
from app.storage.port import Compiled, DuplicateRow, NothingChanged, Params, Query, Row, Transaction

_ROW_COUNT = re.compile(r"(\d+)$")


class PostgresDatabase:
    dialect = "postgresql"

    def __init__(self, dsn: str, *, pool_size: int = 10) -> None:
        self._dsn = dsn
        self._pool_size = pool_size
        self.pool: Any = None
        self._opening = asyncio.Lock()
        self.abandoned: set[asyncio.Task[None]] = set()
        """Rollbacks of cancelled transactions, finishing in the background."""

    async def open(self) -> None:
        import asyncpg

        async with self._opening:
            if self.pool is None:
                try:
                    self.pool = await asyncpg.create_pool(
                        self._dsn, min_size=0, max_size=self._pool_size
                    )
                except (OSError, asyncpg.PostgresError) as exc:
                    raise _pg_error(exc) from None

    async def ping(self) -> None:
        """On a connection of the commands' pool."""
        await self.open()
        try:
            await self.pool.fetchval("SELECT 1 FROM alembic_version")
        except Exception as exc:
            raise _pg_error(exc) from None

    async def close(self) -> None:
        if self.abandoned:
            await asyncio.wait(set(self.abandoned), timeout=5)
        if self.pool is not None:
            pool, self.pool = self.pool, None
            await pool.close()

    def transaction(
        self, *, write: bool, background: bool = False
    ) -> AbstractAsyncContextManager[Transaction]:
        return _PgTransaction(self, write)


def _pg_error(exc: BaseException) -> Exception:
    import asyncpg

    if isinstance(exc, asyncpg.UniqueViolationError):
        return DuplicateRow(str(exc))
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate in ("40001", "40P01"):  # serialization failure, deadlock
        return Unavailable(
            "A concurrent change got in the way; please try again",
            code="DATABASE_CONFLICT",
            retry_after=1,
        )
    if isinstance(
        exc,
        OSError
        | asyncpg.InterfaceError
        | asyncpg.ConnectionDoesNotExistError
        | asyncpg.CannotConnectNowError
        | asyncpg.TooManyConnectionsError,
    ):
        return Unavailable("The database connection was lost", code="DATABASE_UNAVAILABLE")
    assert isinstance(exc, Exception)
    return exc


def _pg_args(compiled: Compiled, params: Params | None) -> list[Any]:
    if not compiled.names:
        return []
    values = compiled.values(params)
    return [values[name] for name in compiled.names]


class _PgTransaction(Committing):
    dialect = "postgresql"

    def __init__(self, database: PostgresDatabase, write: bool) -> None:
        self._database = database
        self._pool: Any = database.pool
        self._write = write
        self._abandoned = database.abandoned
        self._connection: Any = None
        self._transaction: Any = None

    async def _open(self) -> None:
        if self._pool is None:
            await self._database.open()
            self._pool = self._database.pool

    def abandon(self) -> None:
        if self._connection is None:
            return
        cleanup = asyncio.get_running_loop().create_task(self.end(commit=False))
        self._abandoned.add(cleanup)
        cleanup.add_done_callback(self._abandoned.discard)

    async def _ready(self) -> Any:
        if self._connection is None:
            self._connection = await self._pool.acquire()
            if self._write:
                self._transaction = self._connection.transaction()
                await self._transaction.start()
        return self._connection

    async def _run(self, method: str, query: Query, params: Params | None) -> Any:
        compiled = query.compiled("postgresql")
        try:
            connection = await self._ready()
            return await getattr(connection, method)(compiled.sql, *_pg_args(compiled, params))
        except Exception as exc:
            raise _pg_error(exc) from None

    async def fetch_one(self, query: Query, params: Params | None = None) -> Row | None:
        row: Row | None = await self._run("fetchrow", query, params)
        return row

    async def fetch_all(self, query: Query, params: Params | None = None) -> list[Row]:
        rows: list[Row] = await self._run("fetch", query, params)
        return rows

    async def execute(self, query: Query, params: Params | None = None) -> int:
        if not self._write:
            raise RuntimeError("a read-only command cannot change the database")
        status: str = await self._run("execute", query, params)
        found = _ROW_COUNT.search(status)
        return int(found.group(1)) if found else 0

    async def defer(
        self,
        query: Query,
        params: Params | None = None,
        *,
        unchanged: type[NothingChanged] | None = None,
    ) -> None:
        """Runs at once (a round trip to PostgreSQL either way)."""
        if await self.execute(query, params) == 0 and unchanged is not None:
            raise unchanged(query)

    async def end(self, *, commit: bool) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            if self._transaction is None:
                return
            if not commit:
                try:
                    await self._transaction.rollback()
                except Exception:  # a broken connection: the pool discards it on release
                    return
                return
            try:
                await self._transaction.commit()
            except Exception as exc:
                error = _pg_error(exc)
                if isinstance(error, Unavailable) and error.code == "DATABASE_UNAVAILABLE":
                    # Lost during COMMIT: it may have been written. Not "never took effect".
                    raise Timeout(
                        "The database connection was lost while committing",
                        code="DATABASE_COMMIT_UNKNOWN",
                    ) from None
                raise error from None
        finally:
            await self._pool.release(connection)
