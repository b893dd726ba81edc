"""Notifications in process, on real databases: `bus.emit` writes to the outbox in the command's
transaction, the relay hands committed rows to the subscribers, the inbox makes a redelivery
change nothing, and a notification that keeps failing is parked and can be replayed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import msgspec
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from app.bootstrap import BusParts, Notifying, build_bus, purges, start_notifying
from app.bus.bus import Bus, Policy
from app.bus.outbox import Outbox, Relay, decode
from app.bus.subscribers import LocalDelivery, backoff
from app.bus.transports.local import LocalTransport
from app.clock import utcnow
from app.errors import AppError
from app.identity import Principal, Role
from app.modules.events.contracts import (
    APPROVE_EVENT,
    CREATE_EVENT,
    EVENT_HISTORY,
    SUBMIT_EVENT,
    ApproveEvent,
    CreateEvent,
    EventHistory,
    SubmitEvent,
)
from app.settings import Fault, Settings
from app.storage.connect import open_database
from app.storage.engine import create_engine, upgrade_to_head
from app.storage.port import Database, Query
from tests.conftest import both_databases

db_backend = both_databases

ORG = "10000000-0000-0000-0000-000000000001"
ADMIN = Principal(user_id="admin-1", organization_id=ORG, role=Role.ADMIN, email="a@acme.com")
USER = Principal(user_id="user-1", organization_id=ORG, role=Role.USER, email="u@acme.com")


@dataclass
class Running:
    parts: BusParts
    database: Database
    notifying: Notifying

    @property
    def bus(self) -> Bus:
        return self.parts.bus

    async def rows(self, sql: str) -> list[Any]:
        async with self.database.transaction(write=False) as tx:
            return await tx.fetch_all(Query(text(sql)))


@asynccontextmanager
async def running(settings: Settings, *, relay: bool = True) -> AsyncIterator[Running]:
    """The modules in process, as the app composes them (its HTTP side aside)."""
    engine = create_engine(settings.database_url)
    await upgrade_to_head(engine)
    await engine.dispose()
    database = open_database(settings.database_url)
    await database.open()
    parts = build_bus(settings, database)
    parts.bus.connect(LocalTransport(parts.bus))
    notifying = start_notifying(
        settings, parts, database, parts.modules if relay else set(), client=None
    )
    try:
        yield Running(parts, database, notifying)
    finally:
        await notifying.drain(5)
        await database.close()
        parts.close()


def quick(settings: Settings, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"notification_backoff": 0.01, "seed_demo_data": False}
    values.update(overrides)
    return msgspec.structs.replace(settings, **values)


def event() -> CreateEvent:
    return msgspec.convert(
        {
            "title": "Quarterly planning",
            "description": "Plan the next quarter together.",
            "startDate": "2026-09-01T09:00:00Z",
            "endDate": "2026-09-01T12:00:00Z",
        },
        CreateEvent,
    )


async def approved_event(bus: Bus) -> str:
    created = await bus.send(CREATE_EVENT.pattern, event(), principal=USER)
    await bus.send(SUBMIT_EVENT.pattern, SubmitEvent(event_id=created.id), principal=USER)
    await bus.send(APPROVE_EVENT.pattern, ApproveEvent(event_id=created.id), principal=ADMIN)
    return str(created.id)


async def test_each_committed_change_is_in_history_and_audit_once(settings: Settings):
    async with running(quick(settings)) as app:
        event_id = await approved_event(app.bus)
        await app.notifying.relay.run_once()
        history = await app.bus.send(
            EVENT_HISTORY.pattern, EventHistory(event_id=event_id), principal=ADMIN
        )
        audit = await app.rows("SELECT id, action, actor_id FROM audit_entries ORDER BY at")
        unpublished = await app.rows("SELECT id FROM events_outbox WHERE published_at IS NULL")

    actions = [entry.action for entry in history.data]
    assert actions == ["event.created", "event.submitted", "event.approved"]
    assert [(e.from_status, e.to_status) for e in history.data] == [
        (None, "DRAFT"),
        ("DRAFT", "SUBMITTED"),
        ("SUBMITTED", "APPROVED"),
    ]
    assert [e.actor_id for e in history.data] == ["user-1", "user-1", "admin-1"]
    # The audit entry of a change is its history entry: the same id (the notification's).
    assert [(row[0], row[1], row[2]) for row in audit] == [
        (e.id, e.action, e.actor_id) for e in history.data
    ]
    assert unpublished == []


async def test_a_command_that_rolls_back_emits_nothing(settings: Settings):
    """The approval runs (and emits), then the command fails before commit: no history, no
    outbox row, no audit entry."""
    faults = (Fault(cmd="events.approve", delay_ms=2000, after_handler=True),)
    async with running(quick(settings, bus_faults=faults)) as app:
        created = await app.bus.send(CREATE_EVENT.pattern, event(), principal=USER)
        await app.bus.send(SUBMIT_EVENT.pattern, SubmitEvent(event_id=created.id), principal=USER)
        with pytest.raises(AppError) as failed:
            await app.bus.send(
                APPROVE_EVENT.pattern,
                ApproveEvent(event_id=created.id),
                principal=ADMIN,
                policy=Policy(timeout=0.3),
            )
        await app.notifying.relay.run_once()
        history = await app.bus.send(
            EVENT_HISTORY.pattern, EventHistory(event_id=created.id), principal=ADMIN
        )
        outbox = await app.rows("SELECT pattern FROM events_outbox ORDER BY seq")
        audit = await app.rows("SELECT action FROM audit_entries ORDER BY at")

    assert failed.value.code == "UPSTREAM_TIMEOUT"
    assert [e.action for e in history.data] == ["event.created", "event.submitted"]
    assert [row[0] for row in outbox] == ["events.created", "events.submitted"]
    assert [row[0] for row in audit] == ["event.created", "event.submitted"]


async def test_emit_outside_a_command_is_refused(settings: Settings):
    async with running(quick(settings)) as app:
        with pytest.raises(RuntimeError, match="inside a command"):
            await app.bus.emit("events.created", object())


async def test_a_redelivered_notification_changes_nothing(settings: Settings):
    """At-least-once delivery: the same notification delivered again (a relay that crashed
    before marking it, a JetStream redelivery) finds its inbox record and is skipped."""
    async with running(quick(settings), relay=False) as app:
        await approved_event(app.bus)
        rows = await app.rows("SELECT body FROM events_outbox ORDER BY seq")
        audit = app.bus.subscribers["audit"]
        notes = [decode(bytes(row[0])) for row in rows]
        first = [await audit.deliver(app.database, note) for note in notes]
        again = [await audit.deliver(app.database, note) for note in notes]
        entries = await app.rows("SELECT count(*) FROM audit_entries")

    assert first == [True, True, True]
    assert again == [False, False, False]
    assert entries[0][0] == 3


def _count(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_poison_notification_is_retried_parked_and_replayed(settings: Settings):
    """A subscriber that fails on every attempt: the notification is tried
    NOTIFICATION_ATTEMPTS times with backoff, then parked with its error; the others pass it.
    Once the cause is gone, replaying it enters it, once."""
    poisoned = (Fault(cmd="audit:events.approved", error="internal", fail_times=1000),)
    labels = {"subscriber": "audit", "pattern": "events.approved"}
    parked_before = _count("eventboard_notifications_dead_lettered_total", **labels)
    async with running(quick(settings, bus_faults=poisoned, notification_attempts=3)) as app:
        event_id = await approved_event(app.bus)
        await app.notifying.relay.run_once()
        audit = app.bus.subscribers["audit"]
        dead = await audit.dead_letters(app.database)
        actions = await app.rows("SELECT action FROM audit_entries ORDER BY at")
        unpublished = await app.rows("SELECT id FROM events_outbox WHERE published_at IS NULL")

    assert [row[0] for row in actions] == ["event.created", "event.submitted"]
    assert unpublished == []  # the relay went on past it
    assert [(d.pattern, d.attempts) for d in dead] == [("events.approved", 3)]
    assert "injected internal error" in dead[0].error
    assert event_id in dead[0].body  # readable: the notification as JSON
    assert _count("eventboard_notifications_dead_lettered_total", **labels) == parked_before + 1

    async with running(quick(settings)) as mended:  # the fault fixed and deployed
        audit = mended.bus.subscribers["audit"]
        assert await audit.dead_letter_count(mended.database) == 1
        assert await audit.replay(mended.database, dead[0].id) is True
        assert await audit.replay(mended.database, dead[0].id) is None  # no longer parked
        actions = await mended.rows("SELECT action FROM audit_entries ORDER BY at")
        assert await audit.dead_letter_count(mended.database) == 0
    assert [row[0] for row in actions] == ["event.created", "event.submitted", "event.approved"]


async def test_a_subscriber_that_fails_once_is_retried_and_enters_once(settings: Settings):
    # Twice: the relay's batch (which then goes one by one), and the first delivery on its own.
    flaky = (Fault(cmd="audit:events.submitted", error="unavailable", fail_times=2),)
    labels = {"subscriber": "audit", "pattern": "events.submitted"}
    retried_before = _count("eventboard_notifications_redelivered_total", **labels)
    async with running(quick(settings, bus_faults=flaky)) as app:
        await approved_event(app.bus)
        await app.notifying.relay.run_once()
        actions = await app.rows("SELECT action FROM audit_entries ORDER BY at")
        dead = await app.bus.subscribers["audit"].dead_letter_count(app.database)

    assert [row[0] for row in actions] == ["event.created", "event.submitted", "event.approved"]
    assert dead == 0
    assert _count("eventboard_notifications_redelivered_total", **labels) == retried_before + 1


async def test_the_relay_drains_what_committed_before_it_stops(settings: Settings):
    async with running(quick(settings, notification_poll_seconds=60.0)) as app:
        await approved_event(app.bus)
        await app.notifying.drain(5)
        unpublished = await app.rows("SELECT id FROM events_outbox WHERE published_at IS NULL")
        entries = await app.rows("SELECT count(*) FROM audit_entries")
    assert unpublished == []
    assert entries[0][0] == 3


async def test_published_rows_and_inbox_records_are_purged_after_their_retention(
    settings: Settings,
):
    configured = quick(settings, notification_retention=3600)
    async with running(configured) as app:
        await approved_event(app.bus)
        await app.notifying.relay.run_once()
        old = utcnow() - timedelta(hours=2)
        async with app.database.transaction(write=True) as tx:
            await tx.execute(
                Query(text("UPDATE events_outbox SET published_at = :old WHERE seq = 1")),
                {"old": old},
            )
            await tx.execute(
                Query(
                    text(
                        "UPDATE audit_inbox SET received_at = :old "
                        "WHERE id = (SELECT min(id) FROM audit_inbox)"
                    )
                ),
                {"old": old},
            )
        purged = [await purge() for purge in purges(configured, app.parts, app.database)]
        outbox = await app.rows("SELECT count(*) FROM events_outbox")
        inbox = await app.rows("SELECT count(*) FROM audit_inbox")
    assert sum(purged) == 2
    assert outbox[0][0] == 2
    assert inbox[0][0] == 2


async def test_the_outbox_lag_shows_how_long_the_oldest_unpublished_notification_waits(
    settings: Settings,
):
    """A relay that cannot publish (NATS away) keeps the rows and reports their age; once it
    publishes again, the lag is 0."""
    async with running(quick(settings), relay=False) as app:
        await approved_event(app.bus)
        outbox = app.bus.outboxes["events"]
        lag = REGISTRY.get_sample_value

        async def unreachable(_: Outbox, __: int) -> int:
            raise ConnectionError("NATS is away")

        failing = Relay([outbox], unreachable, database=app.database, poll=60)
        await failing.run_once()
        waiting = lag("eventboard_outbox_lag_seconds", {"module": "events"})
        unpublished = await app.rows("SELECT id FROM events_outbox WHERE published_at IS NULL")
        healthy = Relay(
            [outbox],
            LocalDelivery(
                app.database,
                list(app.bus.subscribers.values()),
                attempts=1,
                delay=backoff(0.01),
                sleep=asyncio.sleep,
            ),
            database=app.database,
            poll=60,
        )
        await healthy.run_once()
        caught_up = lag("eventboard_outbox_lag_seconds", {"module": "events"})

    assert len(unpublished) == 3
    assert waiting is not None and waiting > 0
    assert caught_up == 0
