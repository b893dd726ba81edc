"""The bus over NATS: the gateway in one place, module workers elsewhere (here: in this process
with buses of their own, over a real NATS server)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from app import startup
from app.bus.transports.nats_connection import NatsServer
from app.main import create_app
from app.settings import Fault, Settings
from tests.conftest import login, make_settings, nats_url, nats_workers, new_event, serve


def gateway_settings(database: Path, url: str, **overrides: Any) -> Settings:
    return make_settings(
        database,
        bus_transport="nats",
        nats_url=url,
        bus_local_modules=("auth",),  # logins stay local; events go over NATS
        retry_base_delay=0.05,
        **overrides,
    )


@asynccontextmanager
async def cluster(
    database: Path,
    url: str,
    workers: int,
    attempts_write: int = 2,
    bus_faults: tuple[Fault, ...] = (),
    **overrides: Any,
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """A gateway and `workers` workers; `bus_faults` are the workers', `overrides` everyone's."""
    settings = gateway_settings(database, url, attempts_write=attempts_write, **overrides)
    async with serve(create_app(settings)) as client:
        worker = msgspec.structs.replace(settings, seed_demo_data=False, bus_faults=bus_faults)
        async with nats_workers(worker, count=workers) if workers else _nothing():
            admin = {"Authorization": f"Bearer {await login(client, 'admin@acme.com')}"}
            yield client, admin


@asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield None


async def test_with_no_worker_requests_fail_fast_with_503(database: Path):
    async with cluster(database, nats_url(), workers=0) as (client, admin):
        began = time.perf_counter()
        response = await client.get("/events", headers=admin)
        elapsed = time.perf_counter() - began
        ready = await client.get("/health/ready")

    assert response.status_code == 503
    assert response.json()["code"] == "NO_RESPONDERS"
    assert elapsed < 1.0  # the deadline is 10 s: no worker is known at once, not at the deadline
    assert ready.status_code == 200  # connected to NATS; a module without workers is not down


async def test_keyed_duplicates_across_two_workers_change_state_once(database: Path):
    async with cluster(database, nats_url(), workers=2) as (client, admin):
        headers = {**admin, "Idempotency-Key": str(uuid.uuid4())}
        body = new_event(title="Across workers")
        responses = await asyncio.gather(
            *(client.post("/events", json=body, headers=headers) for _ in range(10))
        )
        page = await client.get("/events?search=Across%20workers", headers=admin)

    created = [r for r in responses if r.status_code == 201]
    assert {r.status_code for r in responses} <= {201, 409}
    assert len({r.json()["id"] for r in created}) == 1
    assert page.json()["meta"]["total"] == 1


async def test_a_write_that_failed_on_one_worker_is_retried_and_done_once(database: Path):
    faults = (Fault(cmd="events.create", fail_times=1, error="locked"),)  # once on each worker
    async with cluster(database, nats_url(), workers=2, attempts_write=3, bus_faults=faults) as (
        client,
        admin,
    ):
        response = await client.post("/events", json=new_event(title="Retried once"), headers=admin)
        page = await client.get("/events?search=Retried%20once", headers=admin)

    assert response.status_code == 201
    assert page.json()["meta"]["total"] == 1


NATS_SERVER = shutil.which("nats-server") or shutil.which("/usr/sbin/nats-server")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@asynccontextmanager
async def private_nats(
    port: int, store: Path | None = None
) -> AsyncIterator[asyncio.subprocess.Process]:
    """A nats-server of the test's own, with JetStream (its store in `store`, which a restart
    given the same folder keeps)."""
    assert NATS_SERVER is not None
    folder = store or Path(tempfile.mkdtemp(prefix="nats-"))
    process = await asyncio.create_subprocess_exec(
        NATS_SERVER, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(folder),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(100):  # until it accepts connections
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def test_a_nats_restart_is_survived_without_restarting_anything(database: Path):
    nats_url()  # this needs NATS installed; skip like the others without it
    if not NATS_SERVER:
        pytest.skip("nats-server is not installed")
    port = free_port()
    url = f"nats://127.0.0.1:{port}"
    async with private_nats(port) as server, cluster(database, url, workers=1) as (client, admin):
        before = await client.get("/events", headers=admin)
        server.kill()
        await server.wait()
        async with private_nats(port):
            for _ in range(200):  # until both ends have reconnected by themselves
                after = await client.get("/events", headers=admin)
                if after.status_code == 200:
                    break
                await asyncio.sleep(0.05)

    assert before.status_code == 200
    assert after.status_code == 200


async def test_two_deployments_on_one_nats_server_each_see_only_their_own_commands(
    tmp_path: Path,
):
    """NATS_SUBJECT_PREFIX: staging's workers never serve production's commands, nor the reverse,
    although both use one NATS server and the same module names."""
    url = nats_url()
    async with (
        cluster(tmp_path / "one.db", url, workers=1) as (one, one_admin),
        cluster(tmp_path / "two.db", url, workers=1) as (two, two_admin),
    ):
        created = await one.post("/events", json=new_event(title="Only here"), headers=one_admin)
        in_one = await one.get("/events?search=Only%20here", headers=one_admin)
        in_two = await two.get("/events?search=Only%20here", headers=two_admin)
        from_two = await two.get(f"/events/{created.json()['id']}", headers=two_admin)

    assert created.status_code == 201
    assert in_one.json()["meta"]["total"] == 1
    assert in_two.json()["meta"]["total"] == 0  # two's worker answered, from two's database
    assert from_two.status_code == 404


async def test_a_deployment_without_workers_is_not_served_by_another_deployments(tmp_path: Path):
    url = nats_url()
    async with (
        cluster(tmp_path / "served.db", url, workers=1) as (served, served_admin),
        cluster(tmp_path / "alone.db", url, workers=0) as (alone, alone_admin),
    ):
        answered = await served.get("/events", headers=served_admin)
        refused = await alone.get("/events", headers=alone_admin)

    assert answered.status_code == 200
    assert refused.status_code == 503
    assert refused.json()["code"] == "NO_RESPONDERS"


async def health_until(
    client: httpx.AsyncClient, module: str, workers: int
) -> tuple[httpx.Response, float]:
    """/health once it counts `workers` for `module` (at most 5 s), and how long that took."""
    began = time.perf_counter()
    while True:
        health = await client.get("/health")
        if health.json()["modules"][module]["workers"] == workers:
            return health, time.perf_counter() - began
        assert time.perf_counter() - began < 5, health.json()
        await asyncio.sleep(0.05)


async def test_health_counts_each_modules_workers_and_is_503_when_one_has_none(database: Path):
    settings = gateway_settings(database, nats_url())
    worker = msgspec.structs.replace(settings, seed_demo_data=False)
    async with serve(create_app(settings)) as client:
        alone = await client.get("/health")
        ready_alone = await client.get("/health/ready")
        async with nats_workers(worker, count=2):
            served, counted_in = await health_until(client, "events", 2)
        gone, noticed_in = await health_until(client, "events", 0)

    assert alone.status_code == 503
    assert alone.json()["status"] == "degraded"
    assert alone.json()["modules"] == {
        "audit": {"status": "down", "workers": 0},
        "auth": {"status": "up", "workers": 1},  # served in the gateway's own process
        "events": {"status": "down", "workers": 0},
    }
    assert ready_alone.status_code == 200  # readiness is this process's own dependencies
    assert served.status_code == 200
    assert served.json()["modules"]["events"] == {"status": "up", "workers": 2}
    assert counted_in < 2.0 and noticed_in < 2.0  # a census a second
    assert gone.status_code == 503


async def test_a_module_known_to_have_no_worker_is_refused_at_once_and_served_when_one_comes(
    database: Path,
):
    """No retries while nothing could answer, and no breaker left open afterwards: the first
    command after a worker starts is served."""
    settings = make_settings(
        database,
        bus_transport="nats",
        nats_url=nats_url(),
        bus_local_modules=("auth",),
        attempts_read=3,
        retry_base_delay=1.0,
    )
    worker = msgspec.structs.replace(settings, seed_demo_data=False)
    async with serve(create_app(settings)) as client:
        admin = {"Authorization": f"Bearer {await login(client, 'admin@acme.com')}"}
        retried_before = _retries("NO_RESPONDERS")
        began = time.perf_counter()
        refused = [await client.get("/events", headers=admin) for _ in range(20)]
        elapsed = time.perf_counter() - began
        retried = _retries("NO_RESPONDERS") - retried_before
        async with nats_workers(worker, count=1):
            served = await client.get("/events", headers=admin)

    assert {r.status_code for r in refused} == {503}
    assert {r.json()["code"] for r in refused} == {"NO_RESPONDERS"}
    assert all(r.headers["Retry-After"] == "1" for r in refused)
    assert retried == 0
    assert elapsed < 2.0  # 20 refusals; one retry alone would wait up to 1 s
    assert served.status_code == 200


def _retries(reason: str) -> float:
    from prometheus_client import REGISTRY

    value = REGISTRY.get_sample_value(
        "eventboard_bus_retries_total", {"module": "events", "reason": reason}
    )
    return value or 0.0


def certificates(folder: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, made by openssl."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "1", "-subj", "/CN=test-ca")  # fmt: skip
    for name, usage in (("server", "serverAuth"), ("client", "clientAuth")):
        (folder / f"{name}.ext").write_text(
            f"subjectAltName=IP:127.0.0.1\nextendedKeyUsage={usage}\n"
        )
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
                "-out", f"{name}.csr", "-subj", f"/CN={name}")  # fmt: skip
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "1",
                "-extfile", f"{name}.ext")  # fmt: skip
    return {name: folder / name for name in ("ca.pem", "server.pem", "server.key",
                                             "client.pem", "client.key")}  # fmt: skip


async def test_a_tls_nats_server_with_a_password_and_client_certificates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """NATS in production: TLS verified both ways (NATS_TLS_CA, NATS_TLS_CERT, NATS_TLS_KEY)
    and a password in NATS_URL, which no log line ever shows."""
    nats_url()
    if not NATS_SERVER or not shutil.which("openssl"):
        pytest.skip("nats-server and openssl are needed")
    files = certificates(tmp_path)
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        NATS_SERVER, "-a", "127.0.0.1", "-p", str(port), "--user", "eventboard",
        "--pass", "s3cret-pass", "--tls", "--tlscert", str(files["server.pem"]),
        "--tlskey", str(files["server.key"]), "--tlscacert", str(files["ca.pem"]), "--tlsverify",
        "-js", "-sd", str(tmp_path / "jetstream"),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"tls://eventboard:s3cret-pass@127.0.0.1:{port}"
        ca, cert, key = str(files["ca.pem"]), str(files["client.pem"]), str(files["client.key"])
        trusted = NatsServer(url, tls_ca=ca, tls_cert=cert, tls_key=key)
        for _ in range(100):  # until it accepts connections
            try:
                await startup.check_nats(trusted)
                break
            except startup.StartupError:
                await asyncio.sleep(0.05)
        anonymous = NatsServer(url, tls_ca=ca)  # no client certificate
        with pytest.raises(startup.StartupError) as unverified:
            await startup.check_nats(anonymous)
        async with cluster(
            tmp_path / "c.db",
            url,
            workers=1,
            nats_tls_ca=ca,
            nats_tls_cert=cert,
            nats_tls_key=key,
            log_level="DEBUG",
        ) as (client, admin):
            listed = await client.get("/events", headers=admin)
    finally:
        server.kill()
        await server.wait()

    assert listed.status_code == 200
    assert "s3cret-pass" not in str(unverified.value)
    assert "tls://***@127.0.0.1" in str(unverified.value)
    logged = capsys.readouterr()
    assert "events.findAll" in logged.err  # the logs were written, at DEBUG
    assert "s3cret-pass" not in logged.err + logged.out
