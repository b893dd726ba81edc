"""A module worker as operators run it: `python -m app.worker events`, in its own process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

from app.main import create_app
from tests.conftest import TEST_SECRET, login, make_settings, nats_url, serve

ROOT = Path(__file__).resolve().parents[2]


class Worker:
    """`python -m app.worker events` in a process of its own; its log is read as it comes (a
    pipe nobody reads fills up and stalls the worker)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, environment: dict[str, str]) -> Worker:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "app.worker", "events"),
            cwd=ROOT,
            env=environment,
            stderr=asyncio.subprocess.PIPE,
        )
        worker = cls(process)
        await worker.wait_for("worker ready")
        return worker

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            self.lines.append(raw.decode(errors="replace"))
            self._changed.set()
        self._changed.set()

    async def wait_for(self, text: str) -> None:
        async with asyncio.timeout(30):
            while not any(text in line for line in self.lines):
                assert not self._reader.done(), "the worker exited:\n" + "".join(self.lines)
                self._changed.clear()
                await self._changed.wait()

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()
        await self._reader


async def test_a_worker_process_serves_its_module_and_drains_on_sigterm(database: Path):
    url = nats_url()
    settings = make_settings(
        database,
        bus_transport="nats",
        nats_url=url,
        bus_local_modules=("auth",),
        retry_base_delay=0.05,
    )
    environment = {
        **os.environ,
        "APP_ENV": "test",
        "DATABASE_URL": settings.database_url,
        "NATS_URL": url,
        "JWT_SECRET": TEST_SECRET,
        "SEED_DEMO_DATA": "false",
        "BUS_FAULTS": json.dumps([{"cmd": "events.findAll", "delay_ms": 1000}]),
    }
    async with serve(create_app(settings)) as client:
        worker = await Worker.start(environment)
        try:
            admin = {"Authorization": f"Bearer {await login(client, 'admin@acme.com')}"}
            in_flight = asyncio.create_task(client.get("/events", headers=admin))
            await worker.wait_for("fault injected: delay")
            worker.process.send_signal(signal.SIGTERM)
            served = await in_flight
            await worker.wait_for("worker stopped")
            exit_code = await asyncio.wait_for(worker.process.wait(), timeout=30)

            began = time.perf_counter()
            orphaned = await client.get("/events", headers=admin)
            elapsed = time.perf_counter() - began
        finally:
            await worker.stop()

    assert served.status_code == 200
    assert len(served.json()["data"]) == 2  # the gateway's seed data, read by the worker
    assert exit_code == 0
    assert orphaned.status_code == 503
    assert orphaned.json()["code"] == "NO_RESPONDERS"
    assert elapsed < 1.0
