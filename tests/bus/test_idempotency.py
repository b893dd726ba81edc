"""The idempotency middleware on a real SQLite file: exactly-once effect, what is stored, leases,
cancellation, expiry and the purge."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.bus.bus import Bus, Policy
from app.bus.idempotency import (
    KEYS,
    IdempotencyMiddleware,
    purge_expired,
    purge_forever,
)
from app.bus.pipeline import Context
from app.bus.transaction import TransactionMiddleware
from app.bus.transports.wire import WireRoundTripTransport
from app.clock import utcnow
from app.errors import Conflict, Invalid, Mismatch, Timeout, Unavailable
from app.identity import Principal, Role
from app.storage.connect import open_database
from app.storage.engine import create_engine, upgrade_to_head, write_transaction
from app.storage.port import Database, Query
from tests.conftest import fresh_postgres_database

ALICE = Principal(user_id="alice", organization_id="org", role=Role.USER, email="a@o.io")
BOB = Principal(user_id="bob", organization_id="org", role=Role.USER, email="b@o.io")


class Note(msgspec.Struct, frozen=True):
    value: str
    outcome: str = "ok"  # ok | conflict | invalid | unavailable | hang | wait


class Noted(msgspec.Struct, frozen=True):
    row: int
    value: str


@pytest.fixture(params=["sqlite", "postgresql"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with AsyncExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp_path / 'idem.db'}"
            key = "INTEGER PRIMARY KEY"
        else:
            url = await stack.enter_async_context(fresh_postgres_database())
            key = "SERIAL PRIMARY KEY"
        engine = create_engine(url)
        await upgrade_to_head(engine)
        async with engine.begin() as connection:
            await connection.execute(text(f"CREATE TABLE notes (id {key}, value TEXT)"))
        yield engine
        while OPEN:
            await OPEN.pop().close()
        await engine.dispose()


OPEN: list[Database] = []


def database(engine: AsyncEngine) -> Database:
    """The command side's database layer on the engine's database: a new one each time, as
    another process would have (closed when the test ends)."""
    opened = open_database(engine.url.render_as_string(hide_password=False))
    OPEN.append(opened)
    return opened


INSERT_NOTE = Query(text("INSERT INTO notes (value) VALUES (:v) RETURNING id"))


RUNNING: list[asyncio.Event] = []
"""Set by a "wait" handler once it runs, that is, once its request has claimed its key
(one per test: an Event belongs to the event loop that first uses it)."""


async def write_note(cmd: Note, context: Context) -> Noted:
    assert context.tx is not None
    if cmd.outcome == "wait":  # still running, before taking the database's write lock
        RUNNING[-1].set()
        await asyncio.Event().wait()
    row = await context.tx.fetch_one(INSERT_NOTE, {"v": cmd.value})
    assert row is not None
    if cmd.outcome == "conflict":
        raise Conflict("Refused by the domain", code="REFUSED")
    if cmd.outcome == "invalid":
        raise Invalid("Bad value")
    if cmd.outcome == "unavailable":
        raise Unavailable("Try later")
    if cmd.outcome == "hang":
        await asyncio.Event().wait()
    return Noted(row=row[0], value=cmd.value)


def make_bus(engine: AsyncEngine, ttl: float = 3600) -> tuple[Bus, WireRoundTripTransport]:
    db = database(engine)
    bus = Bus(
        handle_middleware=[
            IdempotencyMiddleware(db, secret="s" * 32, ttl=ttl),
            TransactionMiddleware(db),
        ],
    )
    bus.register({"cmd": "notes.write"}, Note, write_note)
    transport = WireRoundTripTransport(bus)
    bus.connect(transport)
    return bus, transport


async def notes(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text("SELECT count(*) FROM notes"))).scalar_one())


async def keys(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as connection:  # a read: never waits for a writer
        return list((await connection.execute(select(KEYS))).all())


async def test_same_key_same_request_runs_once_and_replays(engine: AsyncEngine):
    bus, _ = make_bus(engine)

    first = await bus.send_for_outcome(
        {"cmd": "notes.write"}, Note("a"), principal=ALICE, idempotency_key="k"
    )
    second = await bus.send_for_outcome(
        {"cmd": "notes.write"}, Note("a"), principal=ALICE, idempotency_key="k"
    )

    assert (first.replayed, second.replayed) == (False, True)
    assert first.result == second.result
    assert await notes(engine) == 1
    assert len(await keys(engine)) == 1


async def test_the_key_is_scoped_per_user(engine: AsyncEngine):
    bus, _ = make_bus(engine)

    a = await bus.send_for_outcome(
        {"cmd": "notes.write"}, Note("a"), principal=ALICE, idempotency_key="k"
    )
    b = await bus.send_for_outcome(
        {"cmd": "notes.write"}, Note("a"), principal=BOB, idempotency_key="k"
    )

    assert not a.replayed and not b.replayed
    assert a.result.row != b.result.row
    assert await notes(engine) == 2


async def test_same_key_different_request_is_a_mismatch(engine: AsyncEngine):
    bus, _ = make_bus(engine)
    await bus.send_for_outcome(
        {"cmd": "notes.write"}, Note("a"), principal=ALICE, idempotency_key="k"
    )

    with pytest.raises(Mismatch) as raised:
        await bus.send_for_outcome(
            {"cmd": "notes.write"}, Note("b"), principal=ALICE, idempotency_key="k"
        )

    assert raised.value.code == "IDEMPOTENCY_KEY_MISMATCH"
    assert await notes(engine) == 1


async def test_domain_refusals_are_stored_and_replayed(engine: AsyncEngine):
    bus, _ = make_bus(engine)
    refused = Note("a", outcome="conflict")

    with pytest.raises(Conflict) as first:
        await bus.send_for_outcome(
            {"cmd": "notes.write"}, refused, principal=ALICE, idempotency_key="k"
        )
    with pytest.raises(Conflict) as second:
        await bus.send_for_outcome(
            {"cmd": "notes.write"}, refused, principal=ALICE, idempotency_key="k"
        )

    assert (first.value.replayed, second.value.replayed) == (False, True)
    assert second.value.code == "REFUSED"
    assert await notes(engine) == 0  # the refusal rolled its write back
    assert len(await keys(engine)) == 1


@pytest.mark.parametrize(("outcome", "error"), [("invalid", Invalid), ("unavailable", Unavailable)])
async def test_validation_and_transient_failures_are_not_stored(
    engine: AsyncEngine, outcome, error
):
    bus, _ = make_bus(engine)

    with pytest.raises(error):
        await bus.send_for_outcome(
            {"cmd": "notes.write"}, Note("a", outcome=outcome), principal=ALICE, idempotency_key="k"
        )

    assert await keys(engine) == []
    fixed = await bus.send_for_outcome(
        {"cmd": "notes.write"}, Note("b"), principal=ALICE, idempotency_key="k"
    )
    assert not fixed.replayed


async def test_a_command_cancelled_mid_way_leaves_neither_write_nor_key(engine: AsyncEngine):
    bus, transport = make_bus(engine)

    with pytest.raises(Timeout):
        await bus.send_for_outcome(
            {"cmd": "notes.write"},
            Note("a", outcome="hang"),
            principal=ALICE,
            idempotency_key="k",
            policy=Policy(timeout=0.2),
        )
    await transport.drain(grace=5)

    assert await notes(engine) == 0
    assert await keys(engine) == []


async def test_a_duplicate_while_the_first_runs_is_409_with_retry_after(engine: AsyncEngine):
    RUNNING.append(asyncio.Event())
    bus, transport = make_bus(engine)
    hanging = asyncio.create_task(
        bus.send_for_outcome(
            {"cmd": "notes.write"},
            Note("a", outcome="wait"),
            principal=ALICE,
            idempotency_key="k",
            policy=Policy(timeout=2),
        )
    )
    await RUNNING[-1].wait()

    with pytest.raises(Conflict) as raised:
        await bus.send_for_outcome(
            {"cmd": "notes.write"}, Note("a", outcome="wait"), principal=ALICE, idempotency_key="k"
        )

    assert raised.value.code == "IDEMPOTENCY_KEY_IN_FLIGHT"
    assert raised.value.retry_after is not None and raised.value.retry_after >= 1
    hanging.cancel()
    with pytest.raises(asyncio.CancelledError):
        await hanging
    await transport.drain(grace=5)


async def test_two_processes_racing_with_one_key_change_state_once(engine: AsyncEngine):
    """Two buses (two worker processes) share the database but not their in-flight registries:
    the unique record in the command's transaction decides, the loser replays the winner."""
    first, _ = make_bus(engine)
    second, _ = make_bus(engine)

    outcomes = await asyncio.gather(
        *(
            bus.send_for_outcome(
                {"cmd": "notes.write"}, Note("a"), principal=ALICE, idempotency_key="k"
            )
            for bus in (first, second, first, second)
        ),
        return_exceptions=True,
    )

    results = [o for o in outcomes if not isinstance(o, BaseException)]
    assert {type(o) for o in outcomes if isinstance(o, BaseException)} <= {Conflict}
    assert len({o.result for o in results}) == 1
    assert sum(not o.replayed for o in results) == 1
    assert await notes(engine) == 1


async def test_a_key_reused_after_expiry_runs_again_and_the_purge_removes_old_keys(
    engine: AsyncEngine,
):
    bus, _ = make_bus(engine)
    await bus.send_for_outcome(
        {"cmd": "notes.write"}, Note("a"), principal=ALICE, idempotency_key="k"
    )
    async with write_transaction(engine) as session:
        await session.execute(update(KEYS).values(expires_at=utcnow() - timedelta(seconds=1)))

    again = await bus.send_for_outcome(
        {"cmd": "notes.write"}, Note("a"), principal=ALICE, idempotency_key="k"
    )
    assert not again.replayed
    assert await notes(engine) == 2

    async with write_transaction(engine) as session:
        for n in range(25):
            await session.execute(
                insert(KEYS).values(
                    organization_id="org",
                    user_id="old",
                    pattern="notes.write",
                    key=f"old-{n}",
                    fingerprint="f",
                    reply=b"",
                    created_at=utcnow() - timedelta(days=2),
                    expires_at=utcnow() - timedelta(days=1),
                )
            )
    assert await purge_expired(database(engine), batch=10) == 25
    remaining = await keys(engine)
    assert [(k.user_id, k.key) for k in remaining] == [("alice", "k")]


async def test_no_key_means_no_record(engine: AsyncEngine):
    bus, _ = make_bus(engine)

    await bus.send_for_outcome({"cmd": "notes.write"}, Note("a"), principal=ALICE)
    await bus.send_for_outcome({"cmd": "notes.write"}, Note("a"), principal=ALICE)

    assert await notes(engine) == 2
    async with engine.connect() as connection:
        count = await connection.scalar(select(func.count()).select_from(KEYS))
    assert count == 0


async def test_the_background_purge_runs_every_interval(engine: AsyncEngine):
    async with write_transaction(engine) as session:
        await session.execute(
            insert(KEYS).values(
                organization_id="org",
                user_id="old",
                pattern="notes.write",
                key="old",
                fingerprint="f",
                reply=b"",
                created_at=utcnow() - timedelta(days=2),
                expires_at=utcnow() - timedelta(days=1),
            )
        )
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:  # the first pass has purged; stop the loop at its second wait
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await purge_forever(database(engine), 600, sleep=sleep)

    assert waits == [600, 600]
    assert await keys(engine) == []
