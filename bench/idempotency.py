"""Benchmark: the cost of an Idempotency-Key on `POST /events` (target: p50 under +20%).

The real app (gateway, bus chains, SQLite file in WAL) is driven in-process through httpx's ASGI
transport, one request at a time, keyed and unkeyed creates interleaved so both see the same
machine state. Each request's server-side time is taken around the app's ASGI call (a thin
wrapper, here only), so client overhead does not dilute the difference.

    uv run python bench/idempotency.py            # 5 rounds x 400 requests of each kind
    uv run python bench/idempotency.py --rounds 3 --requests 200

Prints a Markdown table; paste it into bench/RESULTS.md with the date and machine facts.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from litestar import Litestar

from app.main import create_app
from app.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.conftest import serve

BODY = {
    "title": "Benchmark event",
    "description": "Created by the idempotency benchmark.",
    "startDate": "2026-09-01T09:00:00Z",
    "endDate": "2026-09-01T10:00:00Z",
}


class Timed:
    """Wraps the ASGI app; `last_ms` is the server-side time of the latest request."""

    def __init__(self, app: Litestar) -> None:
        self.app = app
        self.last_ms = 0.0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        started = time.perf_counter()
        await self.app(scope, receive, send)
        self.last_ms = (time.perf_counter() - started) * 1000


async def timed_post(client: httpx.AsyncClient, timed: Timed, headers: dict[str, str]) -> float:
    response = await client.post("/events", json=BODY, headers=headers)
    assert response.status_code == 201, response.text
    return timed.last_ms


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run(rounds: int, requests: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        settings = Settings(
            app_env="test",
            database_url=f"sqlite+aiosqlite:///{directory}/bench.db",
            jwt_secret="bench-secret-that-is-long-enough-0123456789",
            bcrypt_rounds=4,
            log_level="ERROR",
        )
        app = create_app(settings)
        timed = Timed(app)
        async with serve(app) as started:
            transport = httpx.ASGITransport(app=timed)
            client = httpx.AsyncClient(transport=transport, base_url=str(started.base_url))
            login = await client.post(
                "/auth/login", json={"email": "admin@acme.com", "password": "Password123!"}
            )
            auth = {"Authorization": f"Bearer {login.json()['accessToken']}"}
            for _ in range(100):  # warm-up
                await client.post("/events", json=BODY, headers=auth)
                await client.post(
                    "/events", json=BODY, headers={**auth, "Idempotency-Key": uuid.uuid4().hex}
                )

            results = []
            for _ in range(rounds):
                plain: list[float] = []
                keyed: list[float] = []
                for _ in range(requests):
                    plain.append(await timed_post(client, timed, auth))
                    key = {"Idempotency-Key": uuid.uuid4().hex}
                    keyed.append(await timed_post(client, timed, {**auth, **key}))
                results.append(
                    (
                        statistics.median(plain),
                        percentile(plain, 0.99),
                        statistics.median(keyed),
                        percentile(keyed, 0.99),
                    )
                )

    p50_plain = statistics.median(r[0] for r in results)
    p99_plain = statistics.median(r[1] for r in results)
    p50_keyed = statistics.median(r[2] for r in results)
    p99_keyed = statistics.median(r[3] for r in results)
    print(f"python {platform.python_version()}, {rounds} rounds x {requests} requests of each kind")
    print()
    print("| POST /events, server-side | p50 (ms) | p99 (ms) |")
    print("|---|---|---|")
    print(f"| no key | {p50_plain:.3f} | {p99_plain:.3f} |")
    print(f"| Idempotency-Key | {p50_keyed:.3f} | {p99_keyed:.3f} |")
    print()
    print(f"keyed / unkeyed at p50: {p50_keyed / p50_plain:.3f} (target < 1.20); per round:")
    for r in results:
        print(f"  {r[0]:.3f} ms vs {r[2]:.3f} ms -> {r[2] / r[0]:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=400)
    arguments = parser.parse_args()
    asyncio.run(run(arguments.rounds, arguments.requests))
