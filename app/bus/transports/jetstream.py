"""Notifications over NATS JetStream (BUS_TRANSPORT=nats): durable, acknowledged, redelivered.

One stream per deployment, `<PREFIX>_notifications`, holds `<prefix>.note.<pattern>`
(`eventboard.note.events.approved`) on disk for NOTIFICATION_RETENTION. The relay publishes
each outbox row with its notification id as `Nats-Msg-Id`, so a row published twice (a crash
between publishing and marking it, or two relays at once) is stored once within the stream's
duplicate window. Each subscribing module has one durable pull consumer, named for the module,
shared by all its workers: a notification goes to one of them, is acknowledged once its effect
has committed, and is redelivered if it is not (a worker killed mid-way, after `ack_wait`). A
failed delivery is negatively acknowledged with a backoff delay, and after NOTIFICATION_ATTEMPTS
deliveries parked in the module's dead letters and acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Sequence

import nats
from loguru import logger
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.errors import NotFoundError

from app.bus.outbox import Outbox, Pending, decode, published_now
from app.bus.subscribers import Backoff, Subscribers
from app.bus.transports.nats_connection import Subjects
from app.clock import utcnow
from app.metrics import metrics
from app.storage.port import Database

ACK_WAIT = 10.0
"""Seconds a delivered notification may go unacknowledged before JetStream redelivers it (a
worker killed with notifications in hand: they come back this much later). A delivery is one
short transaction; one slower than this is delivered twice, and the inbox makes that once."""
BATCH = 10
"""Notifications fetched at a time: at most this many wait for `ACK_WAIT` after a crash."""
DUPLICATE_WINDOW = 120.0


def stream_name(subjects: Subjects) -> str:
    """The deployment's stream: its prefix with what stream names may not hold replaced."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", subjects.prefix) + "_notifications"


async def ensure_stream(js: JetStreamContext, subjects: Subjects, retention: float) -> None:
    """Create the deployment's stream, or bring an existing one's settings up to date."""
    name = stream_name(subjects)
    config = StreamConfig(
        name=name,
        subjects=[subjects.notifications()],
        max_age=retention,
        duplicate_window=DUPLICATE_WINDOW,
    )
    try:
        await js.stream_info(name)
    except NotFoundError:
        with contextlib.suppress(nats.js.errors.BadRequestError):  # created meanwhile
            await js.add_stream(config)
            return
    await js.update_stream(config)


class JetStreamPublish:
    """The relay's publish step over NATS: the oldest unpublished rows to the stream (each
    acknowledged by JetStream), then marked published."""

    def __init__(
        self, client: Client, subjects: Subjects, database: Database, retention: float
    ) -> None:
        self._js = client.jetstream(timeout=5)
        self._subjects = subjects
        self._database = database
        self._retention = retention
        self._stream_ready = False

    async def __call__(self, outbox: Outbox, limit: int) -> int:
        if not self._stream_ready:  # at the first publish, and again after a failure
            await ensure_stream(self._js, self._subjects, self._retention)
            self._stream_ready = True
        try:
            return await self._publish_batch(outbox, limit)
        except Exception:
            self._stream_ready = False  # a NATS restarted without its store has no stream
            raise

    async def _publish_batch(self, outbox: Outbox, limit: int) -> int:
        async with self._database.transaction(write=False, background=True) as tx:
            rows = [
                Pending.of(row) for row in await tx.fetch_all(outbox.unpublished, {"limit": limit})
            ]
        if not rows:
            return 0
        await asyncio.gather(*(self._publish(row) for row in rows))
        marked = utcnow()
        async with self._database.transaction(write=True, background=True) as tx:
            for row in rows:
                await tx.defer(outbox.mark, {"row": row.seq, "now": marked})
        published_now(outbox, rows)
        return len(rows)

    async def _publish(self, row: Pending) -> None:
        await self._js.publish(
            self._subjects.notification(row.pattern), row.body, headers={"Nats-Msg-Id": row.id}
        )


class JetStreamConsumer:
    """A subscribing module's share of its durable consumer: fetches, delivers one at a time
    (in the order JetStream hands them over), acknowledges after commit."""

    def __init__(
        self,
        client: Client,
        subjects: Subjects,
        database: Database,
        subscribers: Subscribers,
        *,
        attempts: int,
        delay: Backoff,
        retention: float,
    ) -> None:
        self._client = client
        self._retention = retention
        self._subjects = subjects
        self._database = database
        self._subscribers = subscribers
        self._attempts = attempts
        self._delay = delay
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._taking = False
        """A notification is in hand (fetched, not yet acknowledged)."""

    def start(self) -> None:
        module = self._subscribers.module
        self._task = asyncio.create_task(self._run(), name=f"{module} notifications")

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        js = self._client.jetstream(timeout=5)
        await ensure_stream(js, self._subjects, self._retention)
        module = self._subscribers.module
        subscription = await js.pull_subscribe(
            self._subjects.notifications(),
            durable=module,
            stream=stream_name(self._subjects),
            config=ConsumerConfig(
                durable_name=module,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=ACK_WAIT,
                max_deliver=-1,
                max_ack_pending=1000,
            ),
        )
        logger.bind(module=module).info("subscribed to notifications")
        return subscription

    async def _run(self) -> None:
        subscription: JetStreamContext.PullSubscription | None = None
        while not self._stopping:
            try:
                if subscription is None:
                    subscription = await self._subscribe()
                messages = await subscription.fetch(batch=BATCH, timeout=1.0)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # NATS away: the client reconnects; fetch again then
                logger.bind(module=self._subscribers.module, error=type(exc).__name__).warning(
                    "notification fetch failed; will try again"
                )
                if isinstance(exc, NotFoundError):  # the consumer or its stream is gone
                    subscription = None
                await asyncio.sleep(1.0)
                continue
            self._taking = True
            try:
                for message in messages:
                    await self._take(message)
            finally:
                self._taking = False
        if subscription is not None:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def _take(self, message: Msg) -> None:
        """Deliver, then acknowledge; on failure, a later redelivery or the dead letters."""
        note = decode(message.data)
        attempt = message.metadata.num_delivered
        module = self._subscribers.module
        if attempt > 1:
            metrics().notifications_redelivered.labels(module, note.pattern).inc()
        try:
            await self._subscribers.deliver(self._database, note)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            if attempt < self._attempts:
                logger.bind(subscriber=module, pattern=note.pattern, attempt=attempt).warning(
                    "notification delivery failed; redelivery in {:.1f} s", self._delay(attempt)
                )
                with contextlib.suppress(Exception):
                    await message.nak(delay=self._delay(attempt))
                return
            try:
                await self._subscribers.park(self._database, note, error, attempt)
            except Exception:  # not parked: leave it unacknowledged, to come back
                logger.opt(exception=True).warning("dead letter not written")
                return
        with contextlib.suppress(Exception):
            await message.ack()

    async def drain(self, grace: float) -> None:
        """Stop fetching; the notification in hand is finished (and acknowledged) first."""
        self._stopping = True
        if self._task is None:
            return
        if not self._taking:  # waiting in a fetch: nothing in hand to finish
            self._task.cancel()
        _, pending = await asyncio.wait({self._task}, timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None


def start_consumers(
    client: Client,
    subjects: Subjects,
    database: Database,
    groups: Sequence[Subscribers],
    *,
    attempts: int,
    delay: Backoff,
    retention: float,
) -> list[JetStreamConsumer]:
    """A consumer per subscribing module, each subscribing (and creating the stream if need
    be) in its own task, again after a failure: NATS without JetStream delays notifications,
    never the commands."""
    consumers = [
        JetStreamConsumer(
            client, subjects, database, group, attempts=attempts, delay=delay, retention=retention
        )
        for group in groups
    ]
    for consumer in consumers:
        consumer.start()
    return consumers
