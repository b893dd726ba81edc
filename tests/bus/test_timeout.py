"""Deadlines: the caller gets a Timeout at the deadline, the handler is cancelled and its
transaction rolled back, and work whose deadline has passed never starts."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import text

from app.bus.bus import Bus, Policy
from app.bus.envelope import Envelope, Outcome
from app.bus.pipeline import Context
from app.bus.retry import Retries
from app.bus.sender import Sender
from app.bus.transaction import TransactionMiddleware
from app.bus.transports.local import LocalTransport
from app.bus.transports.wire import WireRoundTripTransport
from app.errors import Timeout
from app.storage.connect import open_database
from app.storage.port import Database, Query


class Note(msgspec.Struct, frozen=True):
    value: str


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Database]:
    path = tmp_path / "deadline.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (value TEXT NOT NULL)")
    database = open_database(f"sqlite+aiosqlite:///{path}")
    yield database
    await database.close()


@pytest.mark.parametrize("transport_type", [LocalTransport, WireRoundTripTransport])
async def test_slow_handler_times_out_at_the_deadline_and_its_write_rolls_back(
    engine: Database, transport_type: type[LocalTransport]
):
    """In process (`LocalTransport`), the sender's timeout cancels the handler; over a wire
    (simulated), the handle side's own deadline does."""
    never = asyncio.Event()
    started = asyncio.Event()

    async def write_then_hang(cmd: Note, context: Context) -> int:
        assert context.tx is not None
        await context.tx.execute(Query(text("INSERT INTO notes VALUES (:v)")), {"v": cmd.value})
        started.set()
        await never.wait()  # a handler stuck downstream
        return 1

    bus = Bus(handle_middleware=[TransactionMiddleware(engine)])
    bus.register({"cmd": "notes.write"}, Note, write_then_hang)
    transport = transport_type(bus)
    bus.connect(transport)

    began = time.perf_counter()
    with pytest.raises(Timeout) as raised:
        await bus.send({"cmd": "notes.write"}, Note("lost"), policy=Policy(timeout=0.3))
    elapsed = time.perf_counter() - began

    assert started.is_set()
    assert raised.value.code == "UPSTREAM_TIMEOUT"
    assert 0.3 <= elapsed < 0.4
    await transport.drain(grace=5)
    assert transport.in_flight == 0
    async with engine.transaction(write=False) as tx:
        assert await tx.fetch_one(Query(text("SELECT count(*) FROM notes"))) == (0,)


async def test_work_past_its_deadline_is_refused_before_it_starts():
    ran: list[str] = []

    async def handler(cmd: Note, context: Context) -> int:
        ran.append(cmd.value)
        return 1

    bus = Bus()
    bus.register({"cmd": "notes.write"}, Note, handler)
    expired = Envelope(
        pattern="notes.write",
        payload=Note("late"),
        message_id="m",
        correlation_id="c",
        deadline=time.time() - 0.001,
    )

    with pytest.raises(Timeout) as raised:
        await bus.dispatch(expired)

    assert raised.value.code == "DEADLINE_EXCEEDED"
    assert ran == []


async def test_the_handle_side_cancels_its_handler_at_the_deadline_on_its_own():
    cancelled = asyncio.Event()

    async def hang(cmd: Note, context: Context) -> int:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return 1

    bus = Bus()
    bus.register({"cmd": "notes.hang"}, Note, hang)
    envelope = Envelope(
        pattern="notes.hang",
        payload=Note("x"),
        message_id="m",
        correlation_id="c",
        deadline=time.time() + 0.1,
    )

    with pytest.raises(Timeout):
        await bus.dispatch(envelope)
    assert cancelled.is_set()


async def test_an_attempt_may_use_all_the_time_left():
    """The deadline is a budget for the whole call: a first attempt is not cut to a share of
    it because more attempts are allowed."""
    calls: list[int] = []

    async def slow_once(sent: Envelope[Any]) -> Outcome:
        calls.append(sent.attempt)
        await asyncio.sleep(0.4)
        return Outcome("done")

    first_of_three = Envelope(
        pattern="notes.read",
        payload=None,
        message_id="m",
        correlation_id="c",
        deadline=time.time() + 0.6,
        max_attempts=3,
        read=True,
    )

    assert (await Sender(slow_once)(first_of_three)).result == "done"
    assert calls == [1]


async def test_a_per_try_cap_ends_an_attempt_and_a_retry_follows_while_time_is_left():
    calls: list[float] = []
    began = time.perf_counter()

    async def stranded_then_fine(sent: Envelope[Any]) -> Outcome:
        calls.append(time.perf_counter() - began)
        if sent.attempt == 1:
            await asyncio.Event().wait()  # a worker that died with the command
        return Outcome("done")

    envelope = Envelope(
        pattern="notes.read",
        payload=None,
        message_id="m",
        correlation_id="c",
        deadline=time.time() + 2.0,
        max_attempts=2,
        read=True,
    )
    sender = Sender(stranded_then_fine, retries=Retries(base_delay=0.0), per_try=0.2)

    assert (await sender(envelope)).result == "done"
    assert len(calls) == 2
    assert 0.2 <= calls[1] < 0.5  # the second attempt began once the first's 0.2 s ran out
