"""Hostile clients against the password routes: concurrent guesses, login floods, and forged
X-Forwarded-For headers must not get around the limits or take the service down for others."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest

from app.main import create_app
from tests.conftest import ACME_ID, PASSWORD, client_at, login, make_settings, serve


@pytest.fixture(params=["memory", "redis"])
def limit_storage(request: pytest.FixtureRequest) -> str | None:
    """Where the rate limits live: this process's memory, or the Redis of TEST_REDIS_URL."""
    if request.param == "memory":
        return None
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        pytest.skip("TEST_REDIS_URL is not set (e.g. redis://127.0.0.1:6379/0)")
    return url


def a_client_address() -> str:
    """An address of our own (TEST-NET-2), so counts kept in a shared Redis never collide."""
    number = uuid.uuid4().int
    return f"198.51.{number % 256}.{number // 256 % 254 + 1}"


async def new_member(client: httpx.AsyncClient) -> str:
    email = f"guess-{uuid.uuid4().hex[:10]}@acme.com"
    body = {
        "email": email,
        "password": PASSWORD,
        "firstName": "Guessed",
        "lastName": "Person",
        "organizationId": ACME_ID,
    }
    assert (await client.post("/auth/signup", json=body)).status_code == 201
    return email


async def test_concurrent_guesses_end_in_429_at_the_configured_limit(
    tmp_path: Path, limit_storage: str | None
):
    settings = make_settings(
        tmp_path / "guess.db",
        redis_url=limit_storage,
        login_failures_per_15min=10,
        login_concurrency_per_client=0,  # every guess reaches the password check
    )
    async with serve(create_app(settings), address=a_client_address()) as client:
        email = await new_member(client)
        guesses = await asyncio.gather(
            *(
                client.post("/auth/login", json={"email": email, "password": f"Wrong{n}pass!"})
                for n in range(12)
            )
        )
        right = await client.post("/auth/login", json={"email": email, "password": PASSWORD})

    assert Counter(r.status_code for r in guesses) == {401: 10, 429: 2}
    assert right.status_code == 429
    assert right.json()["code"] == "RATE_LIMITED"


async def test_a_successful_login_clears_the_count_of_its_email_and_client(tmp_path: Path):
    settings = make_settings(tmp_path / "clear.db", login_failures_per_15min=3)
    async with serve(create_app(settings)) as client:
        wrong = {"email": "user@acme.com", "password": "Wrong123!"}
        first = [(await client.post("/auth/login", json=wrong)).status_code for _ in range(2)]
        await login(client, "user@acme.com")
        after = [(await client.post("/auth/login", json=wrong)).status_code for _ in range(4)]

    assert first == [401, 401]
    assert after == [401, 401, 401, 429]  # the count started again at the success


def flood_settings(tmp_path: Path) -> object:
    """bcrypt as operators run it (cost 12, about 0.3 s a hash here) on one thread: a queue of
    40 logins is 12 s of hashing, more than the 5 s an auth route may take."""
    return make_settings(
        tmp_path / "flood.db",
        bcrypt_rounds=12,
        bcrypt_threads=1,
        login_failures_per_15min=0,
        log_level="ERROR",
    )


async def flood(clients: list[httpx.AsyncClient]) -> list[asyncio.Task[httpx.Response]]:
    """One login with an unknown email per client, all at once."""
    return [
        asyncio.create_task(
            c.post(
                "/auth/login",
                json={"email": f"nobody-{n}@example.com", "password": "Flood123!"},
                timeout=30,
            )
        )
        for n, c in enumerate(clients)
    ]


async def timed(request: asyncio.Future[httpx.Response] | object) -> tuple[httpx.Response, float]:
    began = time.perf_counter()
    response = await request  # type: ignore[misc]
    return response, time.perf_counter() - began


@pytest.mark.slow
async def test_a_login_flood_from_one_client_leaves_others_logging_in_within_2_s(
    tmp_path: Path,
):
    app = create_app(flood_settings(tmp_path))  # type: ignore[arg-type]
    async with serve(app, address="203.0.113.7") as attacker, client_at(app, "192.0.2.80") as user:
        burst = await flood([attacker] * 40)
        await asyncio.wait(burst, return_when=asyncio.FIRST_COMPLETED)  # the flood is on

        logged_in, login_seconds = await timed(
            user.post("/auth/login", json={"email": "admin@acme.com", "password": PASSWORD})
        )
        assert logged_in.status_code == 200, logged_in.text
        token = logged_in.json()["accessToken"]
        me, me_seconds = await timed(
            user.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
        )
        flooded = await asyncio.gather(*burst)
        health = (await user.get("/health")).json()

    assert logged_in.status_code == 200
    assert login_seconds < 2
    assert me.status_code == 200
    assert me_seconds < 2
    statuses = Counter(r.status_code for r in flooded)
    assert set(statuses) <= {401, 429}, statuses  # no 504: nobody waited for a deadline
    assert statuses[429] >= 30  # the client's excess is refused at once
    assert {r.json()["code"] for r in flooded if r.status_code == 429} == {
        "TOO_MANY_CONCURRENT_LOGINS"
    }
    assert health["status"] == "ok"  # no breaker opened


@pytest.mark.slow
async def test_a_login_flood_from_many_clients_is_shed_fast_and_other_commands_go_on(
    tmp_path: Path,
):
    app = create_app(flood_settings(tmp_path))  # type: ignore[arg-type]
    async with serve(app, address="192.0.2.80") as user:
        token = await login(user, "admin@acme.com")
        attackers = [client_at(app, f"203.0.113.{n + 1}") for n in range(40)]
        burst = [asyncio.ensure_future(timed(t)) for t in await flood(attackers)]
        await asyncio.wait(burst, return_when=asyncio.FIRST_COMPLETED)

        me, me_seconds = await timed(
            user.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
        )
        flooded = await asyncio.gather(*burst)
        again = [
            (await user.get("/auth/me", headers={"Authorization": f"Bearer {token}"})).status_code
            for _ in range(3)
        ]
        for attacker in attackers:
            await attacker.aclose()

    assert me.status_code == 200
    assert me_seconds < 2
    refused = [(r, s) for r, s in flooded if r.status_code == 503]
    checked = [r for r, _ in flooded if r.status_code == 401]
    assert len(refused) + len(checked) == 40  # no 504
    assert len(refused) >= 25  # bcrypt's queue holds about 2 s of work; the rest is shed
    assert all(r.json()["code"] == "OVERLOADED" for r, _ in refused)
    assert all(int(r.headers["retry-after"]) >= 1 for r, _ in refused)
    assert max(s for _, s in refused) < 1  # refused at once, not at a deadline
    assert again == [200, 200, 200]  # overload opened no breaker


# Forwarded headers


async def rotating_failures(client: httpx.AsyncClient, count: int) -> list[int]:
    """Failed logins for one email, each claiming another X-Forwarded-For address."""
    return [
        (
            await client.post(
                "/auth/login",
                json={"email": "user@acme.com", "password": "Wrong123!"},
                headers={"X-Forwarded-For": f"100.64.0.{n + 1}"},
            )
        ).status_code
        for n in range(count)
    ]


@pytest.mark.parametrize(
    "trusted", [(), ("10.0.0.0/8",)], ids=["no-trusted-proxies", "peer-not-trusted"]
)
async def test_forwarded_for_from_an_untrusted_peer_is_ignored(
    tmp_path: Path, trusted: tuple[str, ...]
):
    settings = make_settings(
        tmp_path / "xff.db", login_failures_per_15min=5, trusted_proxies=trusted
    )
    async with serve(create_app(settings), address="127.0.0.1") as client:
        statuses = await rotating_failures(client, 6)

    assert statuses == [401] * 5 + [429]


async def test_forwarded_for_from_a_trusted_proxy_names_the_client(tmp_path: Path):
    settings = make_settings(
        tmp_path / "xff.db", login_failures_per_15min=5, trusted_proxies=("10.0.0.0/8",)
    )
    async with serve(create_app(settings), address="10.1.2.3") as proxy:
        statuses = await rotating_failures(proxy, 6)  # six clients behind the proxy
        same_client = [
            (
                await proxy.post(
                    "/auth/login",
                    json={"email": "user@acme.com", "password": "Wrong123!"},
                    headers={"X-Forwarded-For": "100.64.9.9"},
                )
            ).status_code
            for _ in range(6)
        ]

    assert statuses == [401] * 6
    assert same_client == [401] * 5 + [429]
