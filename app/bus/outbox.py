"""The emitting side of notifications: a transactional outbox per module, and its relay.

`bus.emit(pattern, notification)` inside a command adds a row to the emitting module's outbox
table (`<module>_outbox`) in the command's own transaction: a command that rolls back emitted
nothing, and one that commits has its notification stored with it. The relay publishes committed
rows afterwards, in the order they were written, and marks them published:

- in process (BUS_TRANSPORT=local), by handing them to this process's subscribers in one
  transaction per batch with their inbox records and the mark (`subscribers.py`);
- over NATS, to a JetStream stream (`transports/jetstream.py`), then marking them.

The relay runs when a command that emitted commits (this process's own) and every
NOTIFICATION_POLL_SECONDS (anyone's: another process's, the CLI's, or rows a crash left
unpublished). Published rows stay NOTIFICATION_RETENTION seconds, then are purged.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from loguru import logger
from sqlalchemy import (
    Column,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    update,
)

from app.bus.envelope import Notification
from app.clock import utcnow
from app.metrics import metrics
from app.storage.port import Database, Query, Row, Transaction
from app.storage.schema import Base, UTCDateTime

BATCH = 200
"""Rows a relay takes at a time."""
GATHER = 0.02
"""Once woken, a relay waits this long for more commits to take together: one transaction (and
one publish round) for many notifications under load, at 20 ms of latency."""


@functools.cache
def outbox_table(module: str) -> Table:
    """`<module>_outbox`: the notifications a module emitted, in the order they were written
    (`seq`), published or not yet (`published_at` NULL)."""
    return Table(
        f"{module}_outbox",
        Base.metadata,
        Column("seq", Integer, primary_key=True, autoincrement=True),
        Column("id", String(36), nullable=False),  # a UUIDv4; JetStream and inboxes key by it
        Column("pattern", String(64), nullable=False),
        Column("body", LargeBinary, nullable=False),  # the Notification, as MessagePack
        Column("occurred_at", UTCDateTime(), nullable=False),
        Column("published_at", UTCDateTime()),
        # Only the rows still to publish: marking one takes it out (no second index write),
        # and the relay finds them in order. The purge goes by `seq` (see `purge_oldest`).
        Index(
            f"ix_{module}_outbox_unpublished",
            "seq",
            sqlite_where=text("published_at IS NULL"),
            postgresql_where=text("published_at IS NULL"),
        ),
    )


def purge_oldest(table: Table, moment: Column[datetime]) -> Query:
    """Delete, among the table's `:batch` oldest rows (by its `seq`, the primary key), those
    whose `moment` is before `:cutoff`. Rows are written in `seq` order, so the expired ones are
    at the front: no index on the moment to keep up on every write for a purge every few
    minutes."""
    seq = table.c.seq
    oldest = select(seq).order_by(seq).limit(bindparam("batch")).scalar_subquery()
    return Query(delete(table).where(seq.in_(oldest), moment < bindparam("cutoff")))


class Outbox:
    """One module's outbox table and its statements."""

    def __init__(self, module: str) -> None:
        self.module = module
        table = self.table = outbox_table(module)
        c = table.c
        self.insert = Query(
            insert(table).values(
                {name: bindparam(name) for name in ("id", "pattern", "body", "occurred_at")}
            )
        )
        unpublished = select(c.seq, c.id, c.pattern, c.body, c.occurred_at).where(
            c.published_at.is_(None)
        )
        ordered = unpublished.order_by(c.seq).limit(bindparam("limit"))
        self.unpublished = Query(ordered)
        self.unpublished_locked = Query(ordered.with_for_update(skip_locked=True))
        self.oldest = Query(select(func.min(c.occurred_at)).where(c.published_at.is_(None)))
        self.mark = Query(
            update(table).where(c.seq == bindparam("row")).values(published_at=bindparam("now"))
        )
        self.mark_through = Query(
            update(table)
            .where(c.published_at.is_(None), c.seq <= bindparam("last"))
            .values(published_at=bindparam("now"))
        )
        """Marks every unpublished row up to `last`: only where the relay's write transaction
        excludes every other writer (SQLite), so no row below `last` can commit later."""
        self.purge = purge_oldest(table, c.published_at)

    async def add(self, tx: Transaction, notification: Notification[Any]) -> None:
        """The notification, stored in the emitting command's transaction (at commit at the
        latest: on SQLite in the same hop as the COMMIT)."""
        await tx.defer(
            self.insert,
            {
                "id": notification.id,
                "pattern": notification.pattern,
                "body": _encoder.encode(notification),
                "occurred_at": datetime.fromtimestamp(notification.occurred_at, UTC),
            },
        )


_encoder = msgspec.msgpack.Encoder()
_raw = msgspec.msgpack.Decoder(Notification[msgspec.Raw])


def decode(body: bytes) -> Notification[msgspec.Raw]:
    """A stored or published notification, its payload left encoded (its subscriber knows the
    type)."""
    return _raw.decode(body)


@dataclass(frozen=True, slots=True)
class Pending:
    """An outbox row not yet published."""

    seq: int
    id: str
    pattern: str
    body: bytes
    occurred_at: datetime

    @classmethod
    def of(cls, row: Row) -> Pending:
        return cls(int(row[0]), row[1], row[2], bytes(row[3]), row[4])


Publish = Callable[[Outbox, int], Awaitable[int]]
"""`publish(outbox, limit)`: publish up to `limit` of the outbox's oldest unpublished rows and
mark them; how many it published (0 when none were left)."""


class Relay:
    """Publishes the outboxes of the modules this process serves, after their commands commit.

    `wake(module)` (called when a command of this process that emitted has committed) runs it
    for that module's outbox `GATHER` later; at least every `poll` seconds, also under constant
    wake-ups, it looks at every outbox (rows of other processes, of the CLI, of a crash). A
    failed pass (database or NATS unreachable) is logged and tried again: rows stay in the
    outbox until they are published."""

    def __init__(
        self, outboxes: Sequence[Outbox], publish: Publish, *, database: Database, poll: float
    ) -> None:
        self._outboxes = list(outboxes)
        self._publish = publish
        self._database = database
        self._poll = poll
        self._wake = asyncio.Event()
        self._dirty: set[str] = set()
        """Outboxes a commit of this process has written to since the last pass."""
        self._passing = asyncio.Lock()
        """One pass at a time (the loop's, or a caller's `run_once`)."""
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def wake(self, module: str) -> None:
        self._dirty.add(module)
        self._wake.set()

    def start(self) -> None:
        if self._outboxes and self._task is None:
            self._task = asyncio.create_task(self._run(), name="outbox relay")

    async def _run(self) -> None:
        looked = 0.0
        while not self._stopping:
            self._wake.clear()
            if time.monotonic() - looked >= self._poll:  # the poll: anyone's rows, everywhere
                looked = time.monotonic()
                self._take_dirty()
                await self.run_once()
            else:  # woken by this process's commits: their outboxes, a moment later
                await asyncio.sleep(GATHER)
                await self.run_once(self._take_dirty())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll)
        await self.run_once()  # the last pass: what committed while the previous one ran

    def _take_dirty(self) -> set[str]:
        dirty, self._dirty = self._dirty, set()
        return dirty

    async def run_once(self, modules: set[str] | None = None) -> int:
        """One pass: every outbox (or those of `modules`) until it has nothing unpublished. How
        many were published."""
        async with self._passing:
            return await self._pass(modules)

    async def _pass(self, modules: set[str] | None) -> int:
        published = 0
        for outbox in self._outboxes:
            if modules is not None and outbox.module not in modules:
                continue
            lag = metrics().outbox_lag.labels(outbox.module)
            try:
                for _ in range(10_000):  # bounded: a pass yields to the poll's rhythm
                    count = await self._publish(outbox, BATCH)
                    published += count
                    if count < BATCH:
                        break
                lag.set(0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.bind(module=outbox.module, error=type(exc).__name__).warning(
                    "outbox relay failed; will try again"
                )
                with contextlib.suppress(Exception):
                    lag.set(await oldest_age(self._database, outbox))
        return published

    async def drain(self, grace: float) -> None:
        """On SIGTERM: a last pass publishes what has committed (within `grace` seconds), then the
        relay stops. What it could not publish stays in the outbox for the next process."""
        self._stopping = True
        self._wake.set()
        if self._task is None:
            return
        _, pending = await asyncio.wait({self._task}, timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None


async def oldest_age(database: Database, outbox: Outbox) -> float:
    """Seconds since the oldest unpublished notification of the outbox occurred (0 for none)."""
    async with database.transaction(write=False, background=True) as tx:
        row = await tx.fetch_one(outbox.oldest)
    if row is None or row[0] is None:
        return 0.0
    oldest: datetime = row[0]  # a UTC datetime on both drivers
    return max(0.0, (utcnow() - oldest).total_seconds())


async def purge_published(database: Database, outbox: Outbox, retention: float) -> int:
    """Delete rows published more than `retention` seconds ago."""
    return await purge_before(database, outbox.purge, utcnow() - timedelta(seconds=retention))


async def purge_before(database: Database, purge: Query, cutoff: datetime) -> int:
    """Run a purge statement (`:cutoff`, `:batch`) a batch per transaction until one deletes
    nothing."""
    purged = 0
    for _ in range(100_000):
        async with database.transaction(write=True, background=True) as tx:
            deleted = await tx.execute(purge, {"cutoff": cutoff, "batch": 1000})
        purged += deleted
        if not deleted:
            break
    return purged


def published_now(outbox: Outbox, rows: Sequence[Pending]) -> None:
    counter = metrics().notifications_published
    for row in rows:
        counter.labels(row.pattern).inc()
    logger.bind(module=outbox.module, count=len(rows)).debug("notifications published")
