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


async def test_a_worker_process_serves_its_module_and_drains_on_sigterm(database: Path):
    url = nats_url()
    settings = make_settings(
        database,
        bus_transport="nats",
        nats_url=url,
        bus_local_modules=("auth",),
        retry_base_delay=0.05,
    )
    async with serve(create_app(settings)) as client:
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app.worker", "events",
            cwd=ROOT,
            env={
                **os.environ,
                "APP_ENV": "test",
                "DATABASE_URL": settings.database_url,
                "NATS_URL": url,
                "JWT_SECRET": TEST_SECRET,
                "SEED_DEMO_DATA": "false",
                "BUS_FAULTS": json.dumps([{"cmd": "events.findAll", "delay_ms": 1000}]),
            },
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        lines: list[str] = []

        async def wait_for(text: str) -> None:
            assert worker.stderr is not None
            while not any(text in line for line in lines):
                raw = await asyncio.wait_for(worker.stderr.readline(), timeout=30)
                assert raw, "\n".join(lines)
                lines.append(raw.decode(errors="replace"))

        try:
            await wait_for("worker ready")
            admin = {"Authorization": f"Bearer {await login(client, 'admin@acme.com')}"}
            in_flight = asyncio.create_task(client.get("/events", headers=admin))
            await wait_for("fault injected: delay")
            worker.send_signal(signal.SIGTERM)
            served = await in_flight
            await wait_for("worker stopped")
            exit_code = await asyncio.wait_for(worker.wait(), timeout=30)

            began = time.perf_counter()
            orphaned = await client.get("/events", headers=admin)
            elapsed = time.perf_counter() - began
        finally:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()

    assert served.status_code == 200
    assert len(served.json()["data"]) == 2  # the gateway's seed data, read by the worker
    assert exit_code == 0
    assert orphaned.status_code == 503
    assert orphaned.json()["code"] == "NO_RESPONDERS"
    assert elapsed < 1.0
