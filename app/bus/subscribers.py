"""The receiving side of notifications: a module's subscribers, its inbox and its dead letters.

`bus.on(pattern, NotificationType, handler, module=...)` registers a subscriber as `register`
registers a command handler. A notification is delivered at least once; the subscriber's module
makes the effect exactly once with its inbox (`<module>_inbox`): each delivery runs in a
transaction of its own that first inserts the notification's id there, so a redelivery finds it
and changes nothing. The handler's writes and the inbox record commit together or not at all.

A delivery that fails is tried again with backoff (NOTIFICATION_ATTEMPTS in all); then the
notification is parked in `<module>_dead_letters` with its error, shown by `/health` and by
`eventboard dead-letters`, and replayed from there once the cause is mended.

What a subscriber may rely on: every notification committed arrives, usually within a second;
it may arrive more than once (the inbox absorbs that) and, after a retry or a redelivery, after
notifications that were emitted later. Notifications from one module arrive in the order they
committed otherwise. A subscriber that needs an order orders by the notification's own facts
(`occurred_at`, a version), as the audit log orders by `at`.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
from loguru import logger
from sqlalchemy import Column, Integer, String, Table, Text, bindparam, delete, func, select

from app import correlation
from app.bus.envelope import Notification
from app.bus.outbox import (
    Outbox,
    Pending,
    decode,
    published_now,
    purge_before,
    purge_oldest,
)
from app.clock import utcnow
from app.metrics import metrics
from app.storage.port import Database, Query, Transaction
from app.storage.schema import Base, UTCDateTime, insert_ignoring_conflicts


@functools.cache
def inbox_table(module: str) -> Table:
    """`<module>_inbox`: the notifications the module's subscribers have taken effect for."""
    return Table(
        f"{module}_inbox",
        Base.metadata,
        Column("seq", Integer, primary_key=True, autoincrement=True),  # the purge's order
        Column("id", String(36), nullable=False, unique=True),
        Column("pattern", String(64), nullable=False),
        Column("received_at", UTCDateTime(), nullable=False),
    )


@functools.cache
def dead_letter_table(module: str) -> Table:
    """`<module>_dead_letters`: notifications the module's subscribers failed on every attempt."""
    return Table(
        f"{module}_dead_letters",
        Base.metadata,
        Column("id", String(36), primary_key=True),
        Column("pattern", String(64), nullable=False),
        Column("body", Text, nullable=False),  # the Notification as JSON, for operators to read
        Column("error", Text, nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("parked_at", UTCDateTime(), nullable=False),
    )


@dataclass(frozen=True, slots=True)
class Delivery:
    """What a subscriber gets beside the payload: the notification (id, actor, correlation id,
    when it occurred) and the transaction its effect is written in."""

    notification: Notification[Any]
    tx: Transaction

    @property
    def occurred_at(self) -> datetime:
        return datetime.fromtimestamp(self.notification.occurred_at, UTC)


Subscriber = Callable[[Any, Delivery], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Subscription:
    pattern: str
    payload_type: type[Any]
    handler: Subscriber


class DuplicateSubscription(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str
    pattern: str
    body: str
    error: str
    attempts: int
    parked_at: datetime


FaultHook = Callable[[str], Awaitable[None]]
"""`hook("<module>:<pattern>")` before a subscriber runs: injected faults (BUS_FAULTS)."""


class Subscribers:
    """One module's subscriptions, with its inbox and dead letters."""

    def __init__(self, module: str) -> None:
        self.module = module
        self._subscriptions: dict[str, Subscription] = {}
        inbox = inbox_table(module)
        dead = dead_letter_table(module)
        received: dict[str, Any] = {n: bindparam(n) for n in ("id", "pattern", "received_at")}
        self._receive = Query(lambda d: insert_ignoring_conflicts(inbox, d).values(received))
        self._record = Query(inbox.insert().values(received))
        self._park = Query(lambda d: insert_ignoring_conflicts(dead, d))
        self._dead = Query(
            select(dead.c.id, dead.c.pattern, dead.c.body, dead.c.error, dead.c.attempts)
            .add_columns(dead.c.parked_at)
            .order_by(dead.c.parked_at, dead.c.id)
            .limit(bindparam("limit"))
        )
        self._dead_one = Query(select(dead.c.body).where(dead.c.id == bindparam("id")))
        self._dead_count = Query(select(func.count()).select_from(dead))
        self._forget = Query(delete(dead).where(dead.c.id == bindparam("id")))
        self._purge = purge_oldest(inbox, inbox.c.received_at)
        self.faults: FaultHook | None = None

    def add(self, subscription: Subscription) -> None:
        if subscription.pattern in self._subscriptions:
            raise DuplicateSubscription(
                f"{self.module} already subscribes to {subscription.pattern!r}"
            )
        self._subscriptions[subscription.pattern] = subscription

    def takes(self, pattern: str) -> bool:
        return pattern in self._subscriptions

    async def _run(
        self, tx: Transaction, note: Notification[msgspec.Raw], *, checked: bool
    ) -> bool:
        """The subscriber's effect in `tx`, its inbox record first. `checked`: ask whether the
        record was there (a redelivery: nothing to do, False); otherwise the record is written at
        commit and a duplicate fails it (a batch of a relay that has the rows locked)."""
        subscription = self._subscriptions[note.pattern]
        row = {"id": note.id, "pattern": note.pattern, "received_at": utcnow()}
        if checked:
            if not await tx.execute(self._receive, row):
                return False
        else:
            await tx.defer(self._record, row)
        if self.faults is not None:
            await self.faults(f"{self.module}:{note.pattern}")
        payload = msgspec.msgpack.decode(note.payload, type=subscription.payload_type)
        typed: Notification[Any] = msgspec.structs.replace(note, payload=payload)
        await subscription.handler(payload, Delivery(typed, tx))
        return True

    async def deliver(self, database: Database, note: Notification[msgspec.Raw]) -> bool:
        """One delivery in a transaction of its own: True when it took effect, False for a
        redelivery the inbox recognised (or a notification nobody here takes). Raises what the
        subscriber raised (the transaction rolled back)."""
        if not self.takes(note.pattern):
            return False
        token = correlation.correlation_id.set(note.correlation_id)
        try:
            async with database.transaction(write=True, background=True) as tx:
                took = await self._run(tx, note, checked=True)
        finally:
            correlation.correlation_id.reset(token)
        counter = metrics().notifications_delivered if took else metrics().notifications_redelivered
        counter.labels(self.module, note.pattern).inc()
        return took

    async def deliver_in(self, tx: Transaction, notes: Sequence[Notification[msgspec.Raw]]) -> None:
        """Several deliveries in the caller's transaction (the local relay's batch): the inbox
        records are written at its commit, so a notification delivered before fails the batch
        (DuplicateRow), which then goes one by one."""
        for note in notes:
            if self.takes(note.pattern):
                await self._run(tx, note, checked=False)

    async def park(
        self, database: Database, note: Notification[msgspec.Raw], error: str, attempts: int
    ) -> None:
        """Give up on a notification: into the dead letters, with the last error."""
        body = msgspec.json.encode(_readable(note)).decode()
        async with database.transaction(write=True, background=True) as tx:
            await tx.execute(
                self._park,
                {
                    "id": note.id,
                    "pattern": note.pattern,
                    "body": body,
                    "error": error[:2000],
                    "attempts": attempts,
                    "parked_at": utcnow(),
                },
            )
        metrics().notifications_dead_lettered.labels(self.module, note.pattern).inc()
        logger.bind(
            subscriber=self.module, pattern=note.pattern, id=note.id, attempts=attempts
        ).error("notification dead-lettered: {}", error)

    async def dead_letters(self, database: Database, limit: int = 100) -> list[DeadLetter]:
        async with database.transaction(write=False, background=True) as tx:
            rows = await tx.fetch_all(self._dead, {"limit": limit})
        return [DeadLetter(r[0], r[1], r[2], r[3], int(r[4]), r[5]) for r in rows]

    async def dead_letter_count(self, database: Database) -> int:
        async with database.transaction(write=False, background=True) as tx:
            row = await tx.fetch_one(self._dead_count)
        return int(row[0]) if row else 0

    async def replay(self, database: Database, notification_id: str) -> bool | None:
        """Deliver a dead letter again; on success it leaves the dead letters. None if there is
        no such dead letter; True if it took effect, False if it had already; raises (and stays
        parked) if the subscriber fails again."""
        async with database.transaction(write=False, background=True) as tx:
            row = await tx.fetch_one(self._dead_one, {"id": notification_id})
        if row is None:
            return None
        note = _from_readable(row[0])
        took = await self.deliver(database, note)
        async with database.transaction(write=True, background=True) as tx:
            await tx.execute(self._forget, {"id": notification_id})
        return took

    async def purge(self, database: Database, cutoff: datetime) -> int:
        """Delete inbox records received before `cutoff`."""
        return await purge_before(database, self._purge, cutoff)


class _Readable(msgspec.Struct, frozen=True, kw_only=True):
    """A dead letter as operators read it: the notification, its payload as JSON."""

    id: str
    pattern: str
    payload: Any
    occurred_at: float
    correlation_id: str
    traceparent: str | None = None
    actor: Any = None


def _readable(note: Notification[msgspec.Raw]) -> _Readable:
    return _Readable(
        id=note.id,
        pattern=note.pattern,
        payload=msgspec.msgpack.decode(note.payload),
        occurred_at=note.occurred_at,
        correlation_id=note.correlation_id,
        traceparent=note.traceparent,
        actor=note.actor,
    )


_encoder = msgspec.msgpack.Encoder()


def _from_readable(body: str) -> Notification[msgspec.Raw]:
    readable = msgspec.json.decode(body, type=_Readable)
    note: Notification[Any] = Notification(
        id=readable.id,
        pattern=readable.pattern,
        payload=readable.payload,
        occurred_at=readable.occurred_at,
        correlation_id=readable.correlation_id,
        traceparent=readable.traceparent,
        actor=readable.actor,
    )
    return decode(_encoder.encode(note))


Backoff = Callable[[int], float]


def backoff(base: float) -> Backoff:
    """Seconds before delivery attempt `n + 1` (n >= 1): base, doubling, at most 60 s."""
    return lambda attempt: min(60.0, base * 2 ** (attempt - 1))


async def deliver_with_retries(
    subscribers: Subscribers,
    database: Database,
    note: Notification[msgspec.Raw],
    *,
    attempts: int,
    delay: Backoff,
    sleep: Callable[[float], Awaitable[None]],
) -> None:
    """Deliver until it takes effect, at most `attempts` times; then park it."""
    for attempt in range(1, attempts + 1):
        try:
            await subscribers.deliver(database, note)
            return
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            logger.bind(
                subscriber=subscribers.module, pattern=note.pattern, attempt=attempt
            ).warning("notification delivery failed")
        if attempt < attempts:
            metrics().notifications_redelivered.labels(subscribers.module, note.pattern).inc()
            await sleep(delay(attempt))
    await subscribers.park(database, note, error, attempts)


class LocalDelivery:
    """The relay's publish step in process: this process's subscribers take a batch of rows in
    the transaction that marks them published (one commit for all: nothing is lost or doubled
    by a crash). When the batch fails, each notification goes on its own, with retries."""

    def __init__(
        self,
        database: Database,
        groups: Sequence[Subscribers],
        *,
        attempts: int,
        delay: Backoff,
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self._database = database
        self._groups = list(groups)
        self._attempts = attempts
        self._delay = delay
        self._sleep = sleep

    async def __call__(self, outbox: Outbox, limit: int) -> int:
        try:
            return await self._batch(outbox, limit)
        except Exception as exc:
            logger.bind(module=outbox.module, error=type(exc).__name__).info(
                "notification batch failed; delivering one by one"
            )
        return await self._one_by_one(outbox, limit)

    async def _batch(self, outbox: Outbox, limit: int) -> int:
        async with self._database.transaction(write=True, background=True) as tx:
            rows = [
                Pending.of(row)
                for row in await tx.fetch_all(outbox.unpublished_locked, {"limit": limit})
            ]
            if not rows:
                return 0
            notes = [decode(row.body) for row in rows]
            for group in self._groups:
                token = correlation.correlation_id.set(notes[0].correlation_id)
                try:
                    await group.deliver_in(tx, notes)
                finally:
                    correlation.correlation_id.reset(token)
            marked = utcnow()
            if tx.dialect == "sqlite":  # the one writer: nothing below the last row can come
                await tx.defer(outbox.mark_through, {"last": rows[-1].seq, "now": marked})
            else:  # rows other relays hold (SKIP LOCKED) are theirs to mark
                for row in rows:
                    await tx.defer(outbox.mark, {"row": row.seq, "now": marked})
        published_now(outbox, rows)
        delivered = metrics().notifications_delivered
        for group in self._groups:
            for note in notes:
                if group.takes(note.pattern):
                    delivered.labels(group.module, note.pattern).inc()
        return len(rows)

    async def _one_by_one(self, outbox: Outbox, limit: int) -> int:
        async with self._database.transaction(write=False, background=True) as tx:
            rows = [
                Pending.of(row) for row in await tx.fetch_all(outbox.unpublished, {"limit": limit})
            ]
        for row in rows:
            note = decode(row.body)
            for group in self._groups:
                await deliver_with_retries(
                    group,
                    self._database,
                    note,
                    attempts=self._attempts,
                    delay=self._delay,
                    sleep=self._sleep,
                )
            async with self._database.transaction(write=True, background=True) as tx:
                await tx.execute(outbox.mark, {"row": row.seq, "now": utcnow()})
            published_now(outbox, [row])
        return len(rows)
