"""Benchmark: the cost of the NATS hop. One process (gateway + modules in process) against a
gateway with 1 and 2 events workers over NATS, all real processes on this machine's NATS, one
SQLite file in WAL. Load comes from this process over loopback.

    uv run python bench/nats_hop.py                      # needs NATS on 127.0.0.1:4222
    NATS_URL=nats://host:4222 uv run python bench/nats_hop.py --seconds 10

Per scenario: sequential latency (p50/p99 of 300 requests one at a time: the hop's own cost),
then throughput with 16 concurrent clients for `--seconds`, for GET /events/{id} and POST /events.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
EVENT = "00000000-0000-0000-0000-000000000001"
BODY = {
    "title": "Benchmark event",
    "description": "Created by the NATS benchmark.",
    "startDate": "2026-09-01T09:00:00Z",
    "endDate": "2026-09-01T10:00:00Z",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@asynccontextmanager
async def scenario(database: Path, nats: str, workers: int) -> AsyncIterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "APP_ENV": "test",
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "JWT_SECRET": "bench-secret-that-is-long-enough-0123456789",
        "BCRYPT_ROUNDS": "4",
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_PER_MINUTE": "0",
        "NATS_URL": nats,
    }
    if workers:
        env |= {"BUS_TRANSPORT": "nats", "BUS_LOCAL_MODULES": "auth"}

    async def start(*command: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, *command, cwd=ROOT, env=env, stderr=asyncio.subprocess.DEVNULL
        )

    url = f"http://127.0.0.1:{port}"
    processes = [
        await start("-m", "uvicorn", "app.main:app", "--port", str(port), "--no-access-log")
    ]
    try:
        async with httpx.AsyncClient(base_url=url, timeout=5) as probe:
            await until_ok(lambda: probe.get("/health/live"))
            for _ in range(workers):
                processes.append(await start("-m", "app.worker", "events"))
            if workers:
                token = await login(probe)
                await until_ok(lambda: probe.get(f"/events/{EVENT}", headers=token))
        yield url
    finally:
        for process in processes:
            if process.returncode is None:
                process.terminate()
        for process in processes:
            try:
                await asyncio.wait_for(process.wait(), timeout=15)
            except TimeoutError:
                process.kill()


async def until_ok(request: Callable[[], Awaitable[httpx.Response]]) -> None:
    """Poll (a process starting up) until the request answers 200; at most a minute."""
    async with asyncio.timeout(60):
        while True:
            try:
                if (await request()).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)


async def login(client: httpx.AsyncClient) -> dict[str, str]:
    response = await client.post(
        "/auth/login", json={"email": "admin@acme.com", "password": "Password123!"}
    )
    return {"Authorization": f"Bearer {response.json()['accessToken']}"}


async def measure(url: str, seconds: float) -> dict[str, tuple[float, float, float]]:
    """route -> (p50 ms, p99 ms) sequential, and req/s with 16 concurrent clients."""
    results = {}
    async with httpx.AsyncClient(base_url=url, timeout=15) as client:
        auth = await login(client)

        async def read() -> httpx.Response:
            return await client.get(f"/events/{EVENT}", headers=auth)

        async def create() -> httpx.Response:
            return await client.post("/events", json=BODY, headers=auth)

        routes: dict[str, Callable[[], Awaitable[httpx.Response]]] = {
            "GET /events/{id}": read,
            "POST /events": create,
        }
        for name, call in routes.items():
            for _ in range(30):  # warm-up
                await call()
            latencies = []
            for _ in range(300):
                began = time.perf_counter()
                response = await call()
                latencies.append((time.perf_counter() - began) * 1000)
                assert response.status_code in (200, 201), response.text
            latencies.sort()
            started = time.perf_counter()
            counts = await asyncio.gather(*(load(call, started + seconds) for _ in range(16)))
            rate = sum(counts) / (time.perf_counter() - started)
            results[name] = (
                statistics.median(latencies),
                latencies[int(0.99 * len(latencies))],
                rate,
            )
    return results


async def load(call: Callable[[], Awaitable[httpx.Response]], end: float) -> int:
    done = 0
    while time.perf_counter() < end:
        response = await call()
        assert response.status_code in (200, 201), response.text
        done += 1
    return done


async def main(seconds: float) -> None:
    nats = os.environ.get("NATS_URL", "nats://127.0.0.1:4222")
    table = {}
    for label, workers in (("in process", 0), ("NATS, 1 worker", 1), ("NATS, 2 workers", 2)):
        with tempfile.TemporaryDirectory() as directory:
            async with scenario(Path(directory) / "bench.db", nats, workers) as url:
                table[label] = await measure(url, seconds)
    print("| scenario | route | p50 ms (one at a time) | p99 ms | req/s (16 clients) |")
    print("|---|---|---|---|---|")
    for label, routes in table.items():
        for route, (p50, p99, rate) in routes.items():
            print(f"| {label} | {route} | {p50:.2f} | {p99:.2f} | {rate:.0f} |")
    base = table["in process"]
    for route in base:
        hop = table["NATS, 1 worker"][route][0] - base[route][0]
        print(f"NATS hop, {route}: +{hop:.2f} ms at p50")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    asyncio.run(main(parser.parse_args().seconds))
