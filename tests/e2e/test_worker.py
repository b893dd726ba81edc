"""A module worker as operators run it: `python -m app.worker events`, in its own process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from app.main import create_app
from app.settings import Settings
from tests.conftest import TEST_SECRET, login, make_settings, nats_url, serve
from tests.e2e.otlp import OtlpReceiver
from tests.e2e.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


def worker_environment(
    settings: Settings, fault: dict[str, object] | None = None
) -> dict[str, str]:
    """A worker process's environment: the gateway's database and NATS, one injected fault."""
    return {
        **os.environ,
        "APP_ENV": "test",
        "DATABASE_URL": settings.database_url,
        "NATS_URL": settings.nats_url,
        "NATS_SUBJECT_PREFIX": settings.nats_subject_prefix,
        "JWT_SECRET": TEST_SECRET,
        "SEED_DEMO_DATA": "false",
        "BUS_FAULTS": json.dumps([fault] if fault else []),
    }


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
    environment = worker_environment(settings, {"cmd": "events.findAll", "delay_ms": 1000})
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


async def test_killing_one_of_two_workers_under_load_loses_nothing(database: Path, tmp_path: Path):
    """A worker dies without warning (SIGKILL) while 8 clients send keyed creates: writes stranded
    on it are retried on the other worker before their deadline (each attempt capped by
    PER_TRY_TIMEOUT), each done once; every answer is durable; the load goes on."""
    url = nats_url()
    settings = make_settings(
        database,
        bus_transport="nats",
        nats_url=url,
        bus_local_modules=("auth",),
        retry_base_delay=0.05,
        attempts_write=2,
        timeout_write=3.0,
        per_try_timeout=1.5,
    )
    environment = worker_environment(settings, {"cmd": "events.create", "delay_ms": 300})
    answers: list[tuple[float, str, int, float, str | None]] = []
    async with serve(create_app(settings)) as client:
        logs = [tmp_path / f"worker-{n}.log" for n in range(2)]
        workers = []
        for log in logs:
            with log.open("w") as sink:  # a file, not a pipe: nobody has to keep reading it
                workers.append(
                    await asyncio.create_subprocess_exec(
                        *(sys.executable, "-m", "app.worker", "events"),
                        cwd=ROOT,
                        env=environment,
                        stderr=sink,
                    )
                )
        try:
            for log in logs:  # another process: poll its log, at most 30 s
                for _ in range(600):
                    if "worker ready" in log.read_text():
                        break
                    await asyncio.sleep(0.05)
                else:
                    raise AssertionError(f"the worker did not start:\n{log.read_text()}")
            admin = {"Authorization": f"Bearer {await login(client, 'admin@acme.com')}"}
            retried_before = _retried_timeouts()
            began = time.perf_counter()
            until = began + 5.0

            async def load(number: int) -> None:
                sent = 0
                while time.perf_counter() < until:
                    key = f"kill-{number}-{sent}"
                    sent += 1
                    start = time.perf_counter()
                    response = await client.post(
                        "/events",
                        json={
                            "title": f"Load {key}",
                            "description": "Created while a worker dies.",
                            "startDate": "2026-09-01T09:00:00Z",
                            "endDate": "2026-09-01T10:00:00Z",
                        },
                        headers={**admin, "Idempotency-Key": key},
                    )
                    created = response.json().get("id") if response.status_code == 201 else None
                    elapsed = time.perf_counter() - start
                    answers.append((start - began, key, response.status_code, elapsed, created))

            clients = [asyncio.create_task(load(n)) for n in range(8)]
            await asyncio.sleep(1.5)  # the load runs on both workers; then one dies
            workers[0].kill()
            killed_at = time.perf_counter() - began
            await asyncio.gather(*clients)
            stored: dict[str, str] = {}
            for number in range(1, len(answers) // 100 + 2):
                page = await client.get(
                    f"/events?search=Load%20kill-&limit=100&page={number}", headers=admin
                )
                stored |= {event["title"]: event["id"] for event in page.json()["data"]}
            retried = _retried_timeouts() - retried_before
        finally:
            for worker in workers:
                if worker.returncode is None:
                    worker.kill()
                await worker.wait()

    assert all(status == 201 for _, _, status, _, _ in answers), answers
    assert (
        max(elapsed for *_, elapsed, _ in answers) < 3.0 + 0.1
    )  # every answer before its deadline
    assert retried >= 1  # writes stranded on the dead worker were retried on the other
    assert sum(1 for started, *_ in answers if started > killed_at + 0.5) >= 16  # the load went on
    assert page.json()["meta"]["total"] == len(answers) == len(stored)  # each write exactly once
    assert all(stored[f"Load {key}"] == created for _, key, _, _, created in answers)


def _retried_timeouts() -> float:
    from prometheus_client import REGISTRY

    value = REGISTRY.get_sample_value(
        "eventboard_bus_retries_total", {"module": "events", "reason": "UPSTREAM_TIMEOUT"}
    )
    return value or 0.0


async def test_a_worker_serves_its_metrics_and_probes_on_its_own_port(database: Path):
    """METRICS_PORT: Prometheus counts the commands this worker handled; readiness turns 503 as
    soon as it drains, while liveness stays 200."""
    settings = make_settings(
        database, bus_transport="nats", nats_url=nats_url(), bus_local_modules=("auth",)
    )
    port = free_port()
    environment = {
        **worker_environment(settings, {"cmd": "events.findOne", "delay_ms": 1000}),
        "METRICS_PORT": str(port),
    }
    async with serve(create_app(settings)) as client:
        worker = await Worker.start(environment)
        try:
            await worker.wait_for("worker ready")
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as scraper:
                ready = await scraper.get("/health/ready")
                admin = {"Authorization": f"Bearer {await login(client, 'admin@acme.com')}"}
                served = await client.get("/events", headers=admin)
                scraped = await scraper.get("/metrics")
                in_flight = asyncio.create_task(
                    client.get(f"/events/{uuid.uuid4()}", headers=admin)
                )
                await worker.wait_for("fault injected: delay")
                worker.process.send_signal(signal.SIGTERM)
                await worker.wait_for("draining")
                draining = await scraper.get("/health/ready")
                alive = await scraper.get("/health/live")
                finished = await in_flight
        finally:
            await worker.stop()

    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ok",
        "checks": {
            "database": {"status": "up"},
            "bus": {"status": "up"},
            "draining": {"status": "up"},
        },
    }
    assert served.status_code == 200
    handled = (
        'eventboard_bus_commands_total{outcome="ok",pattern="events.findAll",side="handle"} 1.0'
    )
    assert handled in scraped.text
    assert draining.status_code == 503
    assert draining.json()["checks"]["draining"] == {"status": "down"}
    assert alive.status_code == 200
    assert finished.status_code == 404  # answered after the drain began: nothing was cut off


async def test_one_trace_runs_through_the_gateway_and_the_worker(
    database: Path, monkeypatch: pytest.MonkeyPatch
):
    """Every process exports its spans, each under its role's service name; a request's spans,
    the worker's included, share one trace id, and the worker's log line names it."""
    with OtlpReceiver() as receiver:
        for name in ("OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        settings = make_settings(
            database,
            bus_transport="nats",
            nats_url=nats_url(),
            bus_local_modules=("auth",),
            otel_traces_exporter="otlp",
        )
        environment = {
            **worker_environment(settings),
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        }
        async with serve(create_app(settings)) as client:
            worker = await Worker.start(environment)
            try:
                await worker.wait_for("worker ready")
                admin = {"Authorization": f"Bearer {await login(client, 'admin@acme.com')}"}
                listed = await client.get("/events", headers=admin)
                worker.process.send_signal(signal.SIGTERM)  # a worker flushes its spans on exit
                await worker.wait_for("worker stopped")
            finally:
                await worker.stop()
        # the gateway flushed its own as it stopped

    handled = [s for s in receiver.spans if s.name == "bus.handle events.findAll"]
    assert listed.status_code == 200
    assert [s.service for s in handled] == ["eventboard-events"]
    trace = handled[0].trace_id
    in_trace = {(s.service, s.name.split(" ")[0]) for s in receiver.spans if s.trace_id == trace}
    assert ("eventboard-gateway", "GET") in in_trace  # the HTTP request's span
    assert ("eventboard-gateway", "bus.send") in in_trace
    assert ("eventboard-events", "SELECT") in in_trace  # the worker's SQL
    line = next(line for line in worker.lines if "handled" in line and "events.findAll" in line)
    assert f"trace_id={trace}" in line
