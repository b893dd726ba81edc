"""SQLite: command transactions on dedicated driver connections, running the SQL the port
compiled once, without the ORM's per-row work or a greenlet per call.

WAL mode with `synchronous=NORMAL`: one writer at a time (serialised in process by an asyncio
lock, in arrival order, and across processes by SQLite's own lock with `BEGIN IMMEDIATE`), and
readers. Statements of a command run on the event loop's own connections when that costs
microseconds and never waits (busy timeout 0): point reads (one row by key,
`Query(point=True)`) on a read-only connection, write transactions on a writer connection (a
COMMIT appends to the log; checkpoints run on a thread). A hop to a thread would cost more than
the work, and its answer, on a busy loop, waits its turn to be picked up (bench/RESULTS.md).
What would have to wait goes to a connection with a thread of its own instead: a write when
another process holds the lock (busy timeout 5 s), a point read SQLite says is busy, and scans
(reader threads). A thread's work runs in submission order, so a rollback queued after a
cancelled statement always runs after it.

Datetimes are aware UTC in Python, stored as SQLAlchemy's `UTCDateTime` stores them (naive UTC
text), so rows written either way read back the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from loguru import logger

from app.errors import Unavailable
from app.storage.committing import Committing
from app.storage.port import Compiled, DuplicateRow, NothingChanged, Params, Query, Row, Transaction
from app.storage.pragmas import SQLITE_BUSY_TIMEOUT_MS, sqlite_pragmas

T = TypeVar("T")


def _sqlite_param(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return (
            f"{value.year:04d}-{value.month:02d}-{value.day:02d} "
            f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}"
        )
    return value


def _sqlite_args(compiled: Compiled, params: Params | None) -> tuple[Any, ...]:
    if not compiled.names:
        return ()
    values = compiled.values(params)
    return tuple(_sqlite_param(values[name]) for name in compiled.names)


def _sqlite_rows(compiled: Compiled, rows: list[Any]) -> list[Row]:
    if not compiled.datetimes or not rows:
        return rows
    positions = compiled.datetimes
    parse = datetime.fromisoformat
    converted: list[Row] = []
    for row in rows:
        values = list(row)
        for i in positions:
            if values[i] is not None:
                values[i] = parse(values[i] + "+00:00")  # naive UTC text: one C call
        converted.append(values)
    return converted


def _is_busy(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "database is locked" in text or "database is busy" in text


def sqlite_error(exc: sqlite3.Error) -> Exception:
    """What a SQLite error means to a command (a busy database is a transient `Unavailable`)."""
    if isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc):
        return DuplicateRow(str(exc))
    if _is_busy(exc):
        return Unavailable(
            "The database is busy; please try again", code="DATABASE_BUSY", retry_after=1
        )
    return exc


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a result nobody waited for as seen (its caller was cancelled)."""
    if not future.cancelled():
        future.exception()


def _sqlite_connect(path: str, *, busy_timeout_ms: int) -> sqlite3.Connection:
    db = sqlite3.connect(
        path,
        timeout=busy_timeout_ms / 1000,
        isolation_level=None,  # transactions are begun and ended explicitly
        check_same_thread=False,
    )
    for pragma in sqlite_pragmas(busy_timeout_ms):
        db.execute(pragma)
    db.create_function("unicode_lower", 1, _unicode_lower, deterministic=True)
    return db


def _unicode_lower(text: str | None) -> str | None:
    """SQLite's own lower() and LIKE fold ASCII only; queries call this for the rest."""
    return None if text is None else text.lower()


class _Connection:
    """One sqlite3 connection and the one thread that uses it; work runs in submission order."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite")
        self._db: sqlite3.Connection | None = None

    async def open(self) -> None:
        await self.run(self._connect)

    def _connect(self) -> None:
        self._db = _sqlite_connect(self._path, busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS)

    def submit(self, work: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Queue `work` on the connection's thread, in order with everything queued before."""
        future = asyncio.wrap_future(self._thread.submit(work, *args))
        future.add_done_callback(_retrieve)
        return future

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """Run `work` on the connection's thread. Once submitted it runs, even if the caller
        stops waiting: a COMMIT or ROLLBACK must never be dropped from the queue."""
        future = self.submit(work, *args)
        try:
            return await asyncio.shield(future)
        except sqlite3.Error as exc:
            raise sqlite_error(exc) from None

    @property
    def db(self) -> sqlite3.Connection:
        assert self._db is not None, "the connection is not open"
        return self._db

    async def close(self) -> None:
        if self._db is not None:
            await self.run(self.db.close)
        self._thread.shutdown(wait=True)


def _file_identity(path: str) -> tuple[int, int] | None:
    """The file at `path` (device, inode); None in memory or when there is none."""
    if path == ":memory:":
        return None
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


class SqliteDatabase:
    dialect = "sqlite"

    def __init__(self, path: str, *, readers: int = 2) -> None:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.writer = _Connection(path)
        self.write_lock = asyncio.Lock()
        self._all_readers = [_Connection(path) for _ in range(readers)]
        self.readers: asyncio.Queue[_Connection] = asyncio.Queue()
        self._path = path
        self.inline: sqlite3.Connection | None = None
        """The event loop's own read-only connection, for point reads."""
        self.inline_writer: sqlite3.Connection | None = None
        """The event loop's own write connection: a command's writes run on it, in place."""
        self._inline_commits = 0
        self._checkpointing: asyncio.Task[None] | None = None
        self.opened = False
        self._opening = asyncio.Lock()
        self._file: tuple[int, int] | None = None
        """The database file the connections opened (device, inode)."""

    async def open(self) -> None:
        async with self._opening:  # the first transactions may ask at once
            if self.opened:
                return
            await self.writer.open()
            for reader in self._all_readers:
                await reader.open()
                self.readers.put_nowait(reader)
            inline = _sqlite_connect(self._path, busy_timeout_ms=0)
            inline.execute("PRAGMA query_only = ON")
            self.inline = inline
            writer = _sqlite_connect(self._path, busy_timeout_ms=0)
            writer.execute("PRAGMA wal_autocheckpoint = 0")  # checkpoints run on the thread
            self.inline_writer = writer
            self._file = _file_identity(self._path)
            self.opened = True

    async def ping(self) -> None:
        """On the loop's read connection (a read in WAL mode never waits). Open connections keep
        working on a file that was moved or deleted, writing where nobody will read; so the file
        at the path must still be the one they opened."""
        await self.open()
        if _file_identity(self._path) != self._file:
            raise Unavailable(
                "The database file was moved or replaced", code="DATABASE_UNAVAILABLE"
            )
        assert self.inline is not None
        try:
            self.inline.execute("SELECT 1 FROM alembic_version").fetchall()
        except sqlite3.Error as exc:
            raise sqlite_error(exc) from None

    async def close(self) -> None:
        if not self.opened:
            return
        self.opened = False
        if self._checkpointing is not None:
            await asyncio.wait([self._checkpointing])
        await self.writer.close()
        for reader in self._all_readers:
            await reader.close()
        if self.inline is not None:
            self.inline.close()
            self.inline = None
        if self.inline_writer is not None:
            self.inline_writer.close()
            self.inline_writer = None

    def transaction(
        self, *, write: bool, background: bool = False
    ) -> AbstractAsyncContextManager[Transaction]:
        if write:
            return _SqliteWrite(self, in_place=not background)
        return _SqliteRead(self)

    def committed_in_place(self) -> None:
        """Count a commit made on the loop's writer; every `CHECKPOINT_EVERY` of them, copy the
        write-ahead log back into the database, on the writer's thread (the loop never does)."""
        self._inline_commits += 1
        if self._inline_commits >= CHECKPOINT_EVERY and (
            self._checkpointing is None or self._checkpointing.done()
        ):
            self._inline_commits = 0
            self._checkpointing = asyncio.get_running_loop().create_task(self._checkpoint())

    async def _checkpoint(self) -> None:
        """Holding the writer (commands' writes wait meanwhile, as they would behind SQLite's own
        checkpoint): a checkpoint that ran alongside commits would never be complete when the
        next write begins, and SQLite only starts the log over after a complete one."""
        async with self.write_lock:
            try:
                await self.writer.run(_checkpoint, self.writer.db)
            except Exception:  # a later one will do
                logger.opt(exception=True).warning("SQLite checkpoint failed")


CHECKPOINT_EVERY = 500
"""Commits made on the loop's writer between two checkpoints (SQLite's own default is about
every 1,000 pages; an event with its indexes writes a few)."""


def _checkpoint(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


Pending = list[tuple[str, tuple[Any, ...], "tuple[Query, type[NothingChanged]] | None"]]
"""Deferred statements: SQL, arguments, and for one that must change a row, the query and what
to raise."""


def _flush(db: sqlite3.Connection, begin: str | None, pending: Pending) -> None:
    if begin is not None:
        db.execute(begin)
    for sql, args, required in pending:
        if db.execute(sql, args).rowcount == 0 and required is not None:
            raise required[1](required[0])


def _fetch(
    db: sqlite3.Connection, begin: str | None, pending: Pending, sql: str, args: tuple[Any, ...]
) -> Any:
    _flush(db, begin, pending)
    return db.execute(sql, args).fetchall()


def _change(
    db: sqlite3.Connection, begin: str | None, pending: Pending, sql: str, args: tuple[Any, ...]
) -> int:
    _flush(db, begin, pending)
    return db.execute(sql, args).rowcount


def _end(db: sqlite3.Connection, commit: bool, begin: str | None, pending: Pending) -> None:
    """Commit (after the deferred statements) or roll back; a failed commit rolls back."""
    if not commit:
        if db.in_transaction:
            db.execute("ROLLBACK")
        return
    try:
        _flush(db, begin, pending)
        if db.in_transaction:
            db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:  # nothing was written
            db.execute("ROLLBACK")
        raise


class _SqliteWrite(Committing):
    """A write transaction. The writer is taken at the first statement that runs (so work
    before it, such as hashing a password, holds no lock), and `BEGIN IMMEDIATE` goes with it,
    as do the statements deferred until then.

    In place: a command's writes run on the event loop's own writer connection, which never
    waits (busy timeout 0): a write transaction here is tens of microseconds of CPU (WAL mode,
    `synchronous=NORMAL`: a COMMIT appends to the log, nothing is flushed to disk; the log is
    copied back by checkpoints on the writer's thread). When SQLite says the database is busy
    (another process is writing, or this one's writer thread still rolls back), the transaction
    goes to the writer's thread instead, which waits its turn (busy timeout 5 s). Background work
    (`background=True`, large deletes) always runs on the thread."""

    dialect = "sqlite"

    def __init__(self, database: SqliteDatabase, *, in_place: bool = True) -> None:
        self._database = database
        self._writer = database.writer
        self._lock = database.write_lock
        self._may_run_in_place = in_place
        self._in_place: sqlite3.Connection | None = None
        """The loop's writer, when this transaction runs on it."""
        self._holding = False
        self._pending: Pending = []

    async def _open(self) -> None:
        if not self._database.opened:
            await self._database.open()

    async def _begin(self) -> str | None:
        """Take the writer: the BEGIN still to send with the next statement on the thread, or
        None (in place, BEGIN is sent here; or the writer is held already)."""
        if self._holding:
            return None
        await self._lock.acquire()
        self._holding = True
        connection = self._database.inline_writer
        if self._may_run_in_place and connection is not None:
            try:
                connection.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    self._release()
                    raise sqlite_error(exc) from None
            else:
                self._in_place = connection
                return None
        return "BEGIN IMMEDIATE"

    def _release(self) -> None:
        self._holding = False
        self._lock.release()

    def _take_pending(self) -> Pending:
        pending, self._pending = self._pending, []
        return pending

    async def fetch_one(self, query: Query, params: Params | None = None) -> Row | None:
        rows = await self.fetch_all(query, params)
        return rows[0] if rows else None

    async def fetch_all(self, query: Query, params: Params | None = None) -> list[Row]:
        compiled = query.compiled("sqlite")
        args = _sqlite_args(compiled, params)
        begin = await self._begin()
        if self._in_place is not None:
            rows = _in_place(_fetch, self._in_place, None, self._take_pending(), compiled.sql, args)
        else:
            rows = await self._writer.run(
                _fetch, self._writer.db, begin, self._take_pending(), compiled.sql, args
            )
        return _sqlite_rows(compiled, rows)

    async def execute(self, query: Query, params: Params | None = None) -> int:
        compiled = query.compiled("sqlite")
        args = _sqlite_args(compiled, params)
        begin = await self._begin()
        if self._in_place is not None:
            return int(
                _in_place(_change, self._in_place, None, self._take_pending(), compiled.sql, args)
            )
        changed: int = await self._writer.run(
            _change, self._writer.db, begin, self._take_pending(), compiled.sql, args
        )
        return changed

    async def defer(
        self,
        query: Query,
        params: Params | None = None,
        *,
        unchanged: type[NothingChanged] | None = None,
    ) -> None:
        compiled = query.compiled("sqlite")
        args = _sqlite_args(compiled, params)
        self._pending.append((compiled.sql, args, (query, unchanged) if unchanged else None))

    async def end(self, *, commit: bool) -> None:
        pending = self._take_pending() if commit else []
        self._pending = []
        if not self._holding and not pending:
            return
        begin = await self._begin()
        try:
            if self._in_place is not None:
                _in_place(_end, self._in_place, commit, None, pending)
                if commit:
                    self._database.committed_in_place()
            else:
                await self._writer.run(_end, self._writer.db, commit, begin, pending)
        finally:
            # Released even if the wait for the thread is cancelled: the writer's thread runs
            # the ROLLBACK or COMMIT before anything the next writer sends.
            self._in_place = None
            self._release()

    def abandon(self) -> None:
        self._pending = []
        if not self._holding:
            return
        if self._in_place is not None:
            with contextlib.suppress(sqlite3.Error):
                if self._in_place.in_transaction:
                    self._in_place.execute("ROLLBACK")
            self._in_place = None
        else:
            # Queued behind whatever the writer's thread is still running for this transaction,
            # and before anything the next writer sends (a writer in place finds the database
            # busy until it has run, and comes to the thread too).
            self._writer.submit(_end, self._writer.db, False, None, [])
        self._release()


def _in_place(work: Callable[..., T], *args: Any) -> T:
    """Run a statement on the loop's own connection (it never waits: busy timeout 0)."""
    try:
        return work(*args)
    except sqlite3.Error as exc:
        raise sqlite_error(exc) from None


class _SqliteRead:
    """Reads in autocommit: each statement is its own consistent snapshot. Point reads run on
    the loop's connection; others on a reader connection, taken at the first of them and given
    back when the block ends."""

    dialect = "sqlite"

    def __init__(self, database: SqliteDatabase) -> None:
        self._database = database
        self._readers = database.readers
        self._inline = database.inline
        self._reader: _Connection | None = None

    async def __aenter__(self) -> _SqliteRead:
        if not self._database.opened:
            await self._database.open()
            self._inline = self._database.inline
        return self

    async def __aexit__(self, *_: object) -> None:
        self.release()

    async def _connection(self) -> _Connection:
        if self._reader is None:
            self._reader = await self._readers.get()
        return self._reader

    def release(self) -> None:
        if self._reader is not None:
            self._readers.put_nowait(self._reader)
            self._reader = None

    async def fetch_one(self, query: Query, params: Params | None = None) -> Row | None:
        rows = await self.fetch_all(query, params)
        return rows[0] if rows else None

    async def fetch_all(self, query: Query, params: Params | None = None) -> list[Row]:
        compiled = query.compiled("sqlite")
        if query.point and self._inline is not None:
            try:
                found = self._inline.execute(
                    compiled.sql, _sqlite_args(compiled, params)
                ).fetchall()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise sqlite_error(exc) from None
            else:
                return _sqlite_rows(compiled, found)
        reader = await self._connection()
        rows = await reader.run(
            _fetch, reader.db, None, [], compiled.sql, _sqlite_args(compiled, params)
        )
        return _sqlite_rows(compiled, rows)

    async def execute(self, query: Query, params: Params | None = None) -> int:
        raise RuntimeError("a read-only command cannot change the database")

    async def defer(
        self,
        query: Query,
        params: Params | None = None,
        *,
        unchanged: type[NothingChanged] | None = None,
    ) -> None:
        raise RuntimeError("a read-only command cannot change the database")


# PostgreSQL --------------------------------------------------------------------------------------
