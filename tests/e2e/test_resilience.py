"""The seeds' manual resilience checks, with injected faults instead of stopped containers:
a slow module answers 504 at the deadline, transient failures are retried, nothing is written
twice or half-written."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.main import create_app
from app.settings import Fault
from tests.conftest import PASSWORD, WORKSHOP_ID, login, make_settings, new_event, serve

Client = httpx.AsyncClient
Start = Callable[..., AbstractAsyncContextManager[tuple[Client, dict[str, str]]]]


@pytest.fixture
def start(tmp_path: Path) -> Start:
    """`async with start(faults=[...], **settings) as (client, admin_headers)`."""

    @asynccontextmanager
    async def started(
        faults: list[Fault] | None = None, **overrides: Any
    ) -> AsyncIterator[tuple[Client, dict[str, str]]]:
        overrides.setdefault("retry_base_delay", 0.01)
        settings = make_settings(tmp_path / "r.db", bus_faults=tuple(faults or ()), **overrides)
        async with serve(create_app(settings)) as client:
            admin = {"Authorization": f"Bearer {await login(client, 'admin@acme.com')}"}
            yield client, admin

    return started


async def count_events(client: Client, admin: dict[str, str]) -> int:
    total: int = (await client.get("/events", headers=admin)).json()["meta"]["total"]
    return total


async def test_a_slow_module_answers_504_at_the_deadline(start: Start):
    faults = [Fault(cmd="events.findAll", delay_ms=12_000)]
    async with start(faults, timeout_list=0.3) as (client, admin):
        began = time.perf_counter()
        response = await client.get("/events", headers={**admin, "X-Correlation-ID": "slow-1"})
        elapsed = time.perf_counter() - began

    assert response.status_code == 504
    assert response.json()["code"] == "UPSTREAM_TIMEOUT"
    assert response.json()["correlationId"] == "slow-1"
    assert response.headers["x-correlation-id"] == "slow-1"
    assert 0.3 <= elapsed < 0.4


async def test_a_write_cut_off_at_its_deadline_leaves_nothing_behind(start: Start):
    faults = [Fault(cmd="events.create", delay_ms=5_000, after_handler=True)]
    async with start(faults, timeout_write=0.3, attempts_write=3) as (client, admin):
        before = await count_events(client, admin)
        response = await client.post("/events", json=new_event(), headers=admin)
        after = await count_events(client, admin)

    assert response.status_code == 504
    assert after == before


async def test_two_failures_on_a_read_are_retried_and_recover(start: Start):
    faults = [Fault(cmd="events.findOne", fail_times=2, error="unavailable")]
    async with start(faults) as (client, admin):
        response = await client.get(f"/events/{WORKSHOP_ID}", headers=admin)

    assert response.status_code == 200
    assert response.json()["id"] == WORKSHOP_ID


async def test_a_read_that_keeps_failing_is_503_after_its_attempts(start: Start):
    faults = [Fault(cmd="events.findOne", error="unavailable", error_rate=1.0)]
    async with start(faults) as (client, admin):
        response = await client.get(f"/events/{WORKSHOP_ID}", headers=admin)

    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"


async def test_writes_get_one_attempt_by_default(start: Start):
    faults = [Fault(cmd="events.create", fail_times=1, error="unavailable")]
    async with start(faults) as (client, admin):
        before = await count_events(client, admin)
        failed = await client.post("/events", json=new_event(), headers=admin)
        after = await count_events(client, admin)

    assert failed.status_code == 503
    assert after == before


async def test_a_write_that_never_ran_is_retried_and_written_once(start: Start):
    faults = [Fault(cmd="events.create", fail_times=2, error="locked")]
    async with start(faults, attempts_write=3) as (client, admin):
        before = await count_events(client, admin)
        response = await client.post("/events", json=new_event(title="Exactly once"), headers=admin)
        titles = [e["title"] for e in (await client.get("/events", headers=admin)).json()["data"]]

    assert response.status_code == 201
    assert titles.count("Exactly once") == 1
    assert len(titles) == before + 1


async def test_a_busy_database_is_503_with_retry_after(start: Start):
    faults = [Fault(cmd="events.submit", fail_times=1, error="locked")]
    async with start(faults) as (client, admin):
        response = await client.post(f"/events/{WORKSHOP_ID}/submit", headers=admin)

    assert response.status_code == 503
    assert response.json()["code"] == "DATABASE_BUSY"
    assert response.headers["retry-after"] == "1"


async def test_an_internal_fault_is_a_plain_500_without_details(start: Start):
    faults = [Fault(cmd="events.findOne", error="internal", fail_times=1)]
    async with start(faults) as (client, admin):
        response = await client.get(f"/events/{WORKSHOP_ID}", headers=admin)

    assert response.status_code == 500
    assert response.json()["detail"] == "Internal server error"
    assert "injected" not in response.text


async def test_a_slow_answer_within_the_deadline_is_not_cut_short_by_the_attempts_allowed(
    tmp_path: Path,
):
    """/auth/me may be tried three times within its 5 s: one attempt that takes 1.5 s still
    answers (an attempt used to get a third of the time, and was cancelled three times)."""
    settings = make_settings(
        tmp_path / "slow-me.db",
        timeout_auth=2.0,
        attempts_me=3,
        bus_faults=(Fault(cmd="auth.getMe", delay_ms=1500),),
    )
    app = create_app(settings)
    async with serve(app) as client:
        token = await login(client, "admin@acme.com")
        began = time.perf_counter()
        me = await client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
        elapsed = time.perf_counter() - began

    assert me.status_code == 200
    assert 1.5 <= elapsed < 2.0
    assert app.state.faults.injected == 1  # one attempt, not three


async def test_a_login_that_timed_out_is_never_retried(tmp_path: Path):
    """Logins are CPU-heavy: a timed-out one is not sent again, even with attempts and time left
    (a retry under overload is how overload grows)."""
    settings = make_settings(
        tmp_path / "login-retry.db",
        timeout_auth=2.0,
        attempts_auth=2,
        per_try_timeout=0.2,
        retry_base_delay=0.0,
        login_concurrency_per_client=0,
        login_failures_per_15min=0,
        bus_faults=(Fault(cmd="auth.login", delay_ms=500),),
    )
    app = create_app(settings)
    async with serve(app) as client:
        logins = await asyncio.gather(
            *(
                client.post("/auth/login", json={"email": "user@acme.com", "password": PASSWORD})
                for _ in range(16)
            )
        )

    assert {r.status_code for r in logins} == {504}
    assert app.state.faults.injected == 16  # each login's handler ran once
