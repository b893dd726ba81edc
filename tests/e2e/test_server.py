"""The real server, as operators run it: uvicorn in its own process, SIGTERM, a real browser."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.servers import ROOT, Server, free_port, uvicorn


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the sockets listening on `port`, from /proc/net/tcp and tcp6."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == "0A":  # LISTEN
                packed = bytes.fromhex(address)
                if len(packed) == 4:
                    found.add(str(ipaddress.IPv4Address(packed[::-1])))
                else:  # four little-endian 32-bit words
                    words = b"".join(packed[i : i + 4][::-1] for i in range(0, 16, 4))
                    found.add(str(ipaddress.IPv6Address(words)))
    return found


async def test_make_run_serves_on_loopback_warns_of_the_dev_secret_ignores_forwarded_for(
    tmp_path: Path,
):
    """And says where everything is: the docs, the database, the demo logins."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("APP_ENV", "JWT_SECRET", "HOST")}
    env |= {
        "PORT": str(port),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'make-run.db'}",
        "BCRYPT_ROUNDS": "4",
        "LOGIN_FAILURES_PER_15MIN": "3",
    }
    process = await asyncio.create_subprocess_exec(
        "make", "--no-print-directory", "run", cwd=ROOT, env=env, start_new_session=True,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    server = Server(process, f"http://127.0.0.1:{port}")
    reader = asyncio.create_task(server.read_log())
    try:
        await server.wait_for_log("Uvicorn running on")  # it listens once started
        addresses = listening_addresses(port)
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            statuses = [
                (
                    await client.post(
                        "/auth/login",
                        json={"email": "user@acme.com", "password": "Wrong123!"},
                        headers={"X-Forwarded-For": f"100.64.0.{n + 1}"},
                    )
                ).status_code
                for n in range(4)
            ]
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGTERM)
        await asyncio.wait_for(process.wait(), timeout=30)
        await reader

    assert addresses == {"127.0.0.1"}
    warnings = [line for line in server.lines if "JWT_SECRET is not set" in line]
    assert len(warnings) == 1
    assert "WARNING" in warnings[0]
    assert statuses == [401, 401, 401, 429]  # a new X-Forwarded-For is not a new client
    log = "\n".join(server.lines)
    assert f"API docs at http://127.0.0.1:{port}/api" in log
    assert f"database: {tmp_path / 'make-run.db'}" in log
    assert "demo logins: admin@acme.com (ADMIN)" in log


async def test_sigterm_keeps_answering_while_in_flight_requests_finish_then_exits(tmp_path: Path):
    """During the drain the socket stays open: a new connection gets 503 SHUTTING_DOWN with
    Retry-After and readiness says 503, instead of "connection refused"; the request in flight
    finishes; then the server exits cleanly."""
    faults = json.dumps([{"cmd": "events.findAll", "delay_ms": 1500}])
    async with uvicorn(tmp_path, BUS_FAULTS=faults) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            login = await client.post(
                "/auth/login", json={"email": "admin@acme.com", "password": "Password123!"}
            )
            headers = {"Authorization": f"Bearer {login.json()['accessToken']}"}
            in_flight = asyncio.create_task(client.get("/events", headers=headers))
            await server.wait_for_log("fault injected: delay")

            server.process.send_signal(signal.SIGTERM)
            await server.wait_for_log("SIGTERM: draining")
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as newcomer:
                refused = await newcomer.get("/events", headers=headers)
                ready = await newcomer.get("/health/ready")
            response = await in_flight
        exit_code = await asyncio.wait_for(server.process.wait(), timeout=30)

    log = "\n".join(server.lines)
    assert refused.status_code == 503
    assert refused.json()["code"] == "SHUTTING_DOWN"
    assert refused.headers["Retry-After"] == "1"
    assert ready.status_code == 503
    assert response.status_code == 200
    assert len(response.json()["data"]) == 2
    # uvicorn ends a graceful shutdown by re-raising the signal it caught, with the default
    # handler back in place: the exit status says SIGTERM, the log says how it got there.
    assert exit_code in (0, -signal.SIGTERM)
    order = ["SIGTERM: draining", "drained; shutting down", "stopped", "Application shutdown"]
    assert [log.index(step) for step in order] == sorted(log.index(step) for step in order)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Headless Chromium from Debian's packages, installed when missing (as root)."""
    found = shutil.which("chromium")
    if found:
        return found
    if os.geteuid() != 0:
        pytest.skip("chromium is missing and only root can install it: apt-get install chromium")
    quiet = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=False, timeout=600, env=quiet)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"],
        check=True,
        timeout=900,
        env=quiet,
    )
    installed = shutil.which("chromium")
    assert installed is not None
    return installed


async def test_the_api_docs_render_offline_in_a_real_browser(tmp_path: Path, chromium: str):
    net_log = tmp_path / "net-log.json"
    async with uvicorn(tmp_path) as server:
        browser = await asyncio.create_subprocess_exec(
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            f"--log-net-log={net_log}", "--virtual-time-budget=15000", "--dump-dom",
            f"{server.url}/api",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        dom, _ = await asyncio.wait_for(browser.communicate(), timeout=120)

    page = dom.decode()
    assert "swagger-ui" in page
    assert "opblock-summary-path" in page, page[:2000]
    for path in ("/auth/login", "/events/{event_id}/submit", "/health/ready"):
        assert path in page
    # Everything the page asked for (scripts, styles, the schema) names the page as initiator;
    # the browser's own background traffic does not ("not an origin").
    by_page = {
        urlsplit(event["params"]["url"]).netloc
        for event in json.loads(net_log.read_text())["events"]
        if isinstance(event.get("params"), dict)
        and "url" in event["params"]
        and event["params"].get("initiator") == server.url
    }
    assert by_page == {urlsplit(server.url).netloc}, f"the docs page asked: {by_page}"
