"""Exactly once, through crashes: every committed change is once in its event's history and once
in the audit log, also when the server is SIGKILLed under writes and restarted, when the audit
worker is killed and restarted while changes go on, and when NATS restarts. Real processes:
uvicorn, `python -m app.worker audit`, nats-server."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from app.storage.engine import create_engine
from tests.conftest import (
    ACME_ID,
    PASSWORD,
    TEST_SECRET,
    fresh_postgres_database,
    nats_url,
    new_event,
)
from tests.e2e.servers import ROOT, Server, uvicorn
from tests.e2e.test_nats import NATS_SERVER, free_port, private_nats


async def admin_client(server: Server) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=server.url, timeout=10)
    response = await client.post(
        "/auth/login", json={"email": "admin@acme.com", "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    client.headers["Authorization"] = f"Bearer {response.json()['accessToken']}"
    return client


class Load:
    """Writers creating, submitting and approving events until stopped (or their server dies)."""

    def __init__(self, client: httpx.AsyncClient, writers: int = 4) -> None:
        self._client = client
        self.done = 0
        self._stop = asyncio.Event()
        self._progress = asyncio.Condition()
        self._tasks = [asyncio.create_task(self._write()) for _ in range(writers)]

    async def _write(self) -> None:
        client = self._client
        try:
            while not self._stop.is_set():
                created = await client.post("/events", json=new_event(title="Under load"))
                if created.status_code != 201:
                    continue
                event_id = created.json()["id"]
                await client.post(f"/events/{event_id}/submit")
                await client.post(f"/events/{event_id}/approve")
                async with self._progress:
                    self.done += 1
                    self._progress.notify_all()
        except httpx.HTTPError:
            return  # the server was killed under us

    async def until(self, done: int) -> None:
        async with asyncio.timeout(30), self._progress:
            await self._progress.wait_for(lambda: self.done >= done)

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


async def recorded(url: str) -> tuple[list[str], list[str], int, int]:
    """What the database holds for acme: history ids, audit ids (events), events whose version
    is not their count of history entries, and notifications not yet through (unpublished, or
    parked as dead letters: a redelivery the inbox missed would end there)."""
    engine = create_engine(url)
    try:
        async with engine.connect() as db:
            history = (
                await db.execute(
                    text("SELECT id FROM events_history WHERE organization_id = :o"), {"o": ACME_ID}
                )
            ).scalars()
            history_ids = [str(i) for i in history]
            audit = (
                await db.execute(
                    text(
                        "SELECT id FROM audit_entries "
                        "WHERE organization_id = :o AND subject_type = 'event'"
                    ),
                    {"o": ACME_ID},
                )
            ).scalars()
            audit_ids = [str(i) for i in audit]
            mismatched = (
                await db.execute(
                    text(
                        "SELECT count(*) FROM events_events e WHERE e.organization_id = :o AND "
                        "e.version != (SELECT count(*) FROM events_history h "
                        "WHERE h.event_id = e.id) AND EXISTS "
                        "(SELECT 1 FROM events_history h WHERE h.event_id = e.id)"
                    ),
                    {"o": ACME_ID},
                )
            ).scalar_one()
            unpublished = (
                await db.execute(
                    text(
                        "SELECT (SELECT count(*) FROM events_outbox WHERE published_at IS NULL)"
                        " + (SELECT count(*) FROM auth_outbox WHERE published_at IS NULL)"
                        " + (SELECT count(*) FROM audit_dead_letters)"
                    )
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    return history_ids, audit_ids, int(mismatched), int(unpublished)


async def caught_up(url: str) -> tuple[list[str], list[str], int]:
    """Once the audit log has caught up with the history (at most 40 s: what a killed worker had
    in hand comes back after JetStream's ack_wait, 10 s): both, and the count of
    events whose version disagrees with their history."""
    for _ in range(800):
        history, audit, mismatched, unpublished = await recorded(url)
        if not unpublished and sorted(history) == sorted(audit):
            return history, audit, mismatched
        await asyncio.sleep(0.05)
    return history, audit, mismatched


def assert_exactly_once(history: list[str], audit: list[str], mismatched: int) -> None:
    assert history, "no change was made"
    assert len(set(history)) == len(history)
    assert len(set(audit)) == len(audit)
    assert sorted(audit) == sorted(history)  # every change once in each, and nothing else
    assert mismatched == 0  # every committed change of an event has its history entry


async def test_a_server_killed_under_writes_and_restarted_loses_and_doubles_nothing(
    tmp_path: Path,
):
    url = f"sqlite+aiosqlite:///{tmp_path / 'server.db'}"
    async with uvicorn(tmp_path) as server:
        client = await admin_client(server)
        load = Load(client)
        await load.until(15)
        server.process.kill()  # SIGKILL, writes in flight
        await server.process.wait()
        await load.stop()
        await client.aclose()
    async with uvicorn(tmp_path, SEED_DEMO_DATA="false"):
        history, audit, mismatched = await caught_up(url)
    assert_exactly_once(history, audit, mismatched)


class AuditWorker:
    """`python -m app.worker audit` in a process of its own."""

    def __init__(self, environment: dict[str, str]) -> None:
        self._environment = environment
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self.lines: list[str] = []

    async def start(self) -> None:
        self.lines = []
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app.worker", "audit",
            cwd=ROOT, env=self._environment, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        ready = asyncio.Event()

        async def read() -> None:
            assert self.process is not None and self.process.stderr is not None
            async for raw in self.process.stderr:
                line = raw.decode(errors="replace")
                self.lines.append(line)
                if "subscribed to notifications" in line:
                    ready.set()

        self._reader = asyncio.create_task(read())
        async with asyncio.timeout(30):
            await ready.wait()

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
        if self.process is not None:
            await self.process.wait()
        if self._reader is not None:
            await self._reader


@asynccontextmanager
async def stack(
    tmp_path: Path, nats: str, database_url: str
) -> AsyncIterator[tuple[Server, AuditWorker]]:
    """A gateway serving auth and events in process, and an audit worker, over NATS."""
    prefix = f"crash-{uuid.uuid4().hex[:10]}"
    common = {
        "BUS_TRANSPORT": "nats",
        "NATS_URL": nats,
        "NATS_SUBJECT_PREFIX": prefix,
        "DATABASE_URL": database_url,
        "NOTIFICATION_BACKOFF": "50ms",
    }
    worker = AuditWorker(
        {
            **os.environ,
            **common,
            "APP_ENV": "test",
            "JWT_SECRET": TEST_SECRET,
            "SEED_DEMO_DATA": "false",
        }
    )
    async with uvicorn(tmp_path, BUS_LOCAL_MODULES="auth,events", **common) as server:
        await worker.start()
        try:
            yield server, worker
        finally:
            await worker.kill()


Step = Callable[[AuditWorker, Load], Awaitable[None]]


async def _under_load(tmp_path: Path, nats: str, interruption: Step) -> None:
    async with fresh_postgres_database() as url, stack(tmp_path, nats, url) as (server, worker):
        client = await admin_client(server)
        load = Load(client)
        await load.until(10)
        await interruption(worker, load)
        await load.until(load.done + 10)  # and changes go on after it
        await load.stop()
        await client.aclose()
        history, audit, mismatched = await caught_up(url)
    assert_exactly_once(history, audit, mismatched)


async def test_the_audit_worker_killed_and_restarted_gets_its_backlog_once(tmp_path: Path):
    async def kill_and_restart(worker: AuditWorker, load: Load) -> None:
        await worker.kill()  # SIGKILL: what it had fetched and not acknowledged comes again
        await load.until(load.done + 10)  # changes go on while it is gone: its backlog
        await worker.start()

    await _under_load(tmp_path, nats_url(), kill_and_restart)


async def test_a_nats_restart_under_writes_loses_and_doubles_nothing(tmp_path: Path):
    nats_url()  # skip like the other NATS tests without one
    if not NATS_SERVER:
        pytest.skip("nats-server is not installed")
    port = free_port()
    store = tmp_path / "jetstream"  # kept across the restart, as a real deployment keeps it
    async with AsyncExitStack() as servers:
        first = await servers.enter_async_context(private_nats(port, store))

        async def restart_nats(worker: AuditWorker, load: Load) -> None:
            first.kill()
            await first.wait()
            await load.until(load.done + 10)  # commands go on; their notifications wait
            await servers.enter_async_context(private_nats(port, store))

        await _under_load(tmp_path, f"nats://127.0.0.1:{port}", restart_nats)
