"""Operating the service: probes, draining on SIGTERM, metrics, breakers, tracing, rate limits."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from loguru import logger
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from app.main import create_app
from app.settings import Fault
from tests.conftest import WORKSHOP_ID, login, make_settings, new_event, serve

Start = Callable[..., AbstractAsyncContextManager[tuple[httpx.AsyncClient, dict[str, str]]]]


@pytest.fixture
def start(tmp_path: Path) -> Start:
    @asynccontextmanager
    async def started(**overrides: Any) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
        async with serve(create_app(make_settings(tmp_path / "ops.db", **overrides))) as client:
            yield client, {"Authorization": f"Bearer {await login(client, 'admin@acme.com')}"}

    return started


# Probes


async def test_live_ready_and_full_health(client: httpx.AsyncClient):
    live = await client.get("/health/live")
    ready = await client.get("/health/ready")
    full = await client.get("/health")

    assert live.status_code == ready.status_code == full.status_code == 200
    assert ready.json()["checks"]["database"]["status"] == "up"
    assert ready.json()["checks"]["bus"]["status"] == "up"
    assert full.json()["status"] == "ok"
    assert full.json()["checks"]["database"]["latencyMs"] >= 0


def swap_out(database: Path) -> Path:
    """Put a directory where the database file was, as a lost disk would look to SQLite."""
    moved = database.with_suffix(".moved")
    database.rename(moved)
    database.mkdir()
    return moved


def swap_back(database: Path, moved: Path) -> None:
    database.rmdir()
    moved.rename(database)


async def test_readiness_is_503_naming_the_database_when_it_cannot_be_opened(database: Path):
    async with serve(create_app(make_settings(database))) as client:
        healthy = await client.get("/health/ready")
        moved = swap_out(database)
        unreachable = await client.get("/health/ready")
        swap_back(database, moved)
        recovered = await client.get("/health/ready")

    assert healthy.status_code == 200
    assert unreachable.status_code == 503
    assert unreachable.json()["status"] == "unavailable"
    assert unreachable.json()["checks"]["database"] == {"status": "down", "error": "unavailable"}
    assert str(database) not in unreachable.text  # no path, SQL or exception text, to anyone
    assert unreachable.json()["checks"]["bus"]["status"] == "up"
    assert recovered.status_code == 200


async def test_probes_need_no_token_and_are_not_rate_limited(start: Start):
    async with start(rate_limit_per_minute=3) as (client, _):
        statuses = [(await client.get("/health/live")).status_code for _ in range(10)]

    assert statuses == [200] * 10


# Draining


async def test_sigterm_drains_in_flight_finishes_new_is_refused_ready_turns_503(start: Start):
    faults = (Fault(cmd="events.findAll", delay_ms=700),)
    async with start(bus_faults=faults, log_level="INFO") as (client, admin):
        inside = asyncio.Event()
        sink = logger.add(
            lambda m: inside.set() if m.record["message"] == "fault injected: delay" else None
        )
        in_flight = asyncio.create_task(client.get("/events", headers=admin))
        await inside.wait()  # the request is now inside its (delayed) handler
        logger.remove(sink)

        os.kill(os.getpid(), signal.SIGTERM)

        ready = await client.get("/health/ready")
        refused = await client.get(f"/events/{WORKSHOP_ID}", headers=admin)
        finished = await in_flight

    assert ready.status_code == 503
    assert ready.json()["checks"]["bus"]["status"] == "down"
    assert refused.status_code == 503
    assert refused.json()["code"] == "SHUTTING_DOWN"
    assert finished.status_code == 200
    assert signal.getsignal(signal.SIGTERM) is not None  # the app put the previous handler back


# Metrics


def scrape(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_move_when_commands_run(client: httpx.AsyncClient, auth: dict[str, Any]):
    before = scrape((await client.get("/metrics")).text)
    key = {"Idempotency-Key": uuid.uuid4().hex}
    await client.get(f"/events/{WORKSHOP_ID}", headers=auth["admin"])
    await client.post("/events", json=new_event(), headers={**auth["admin"], **key})
    await client.post("/events", json=new_event(), headers={**auth["admin"], **key})
    response = await client.get("/metrics")
    after = scrape(response.text)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert response.headers["content-type"].startswith("text/plain")
    find = {"pattern": "events.findOne", "outcome": "ok"}
    assert delta("eventboard_bus_commands_total", side="send", **find) == 1
    assert delta("eventboard_bus_commands_total", side="handle", **find) == 1
    assert (
        delta(
            "eventboard_bus_command_duration_seconds_count", pattern="events.findOne", side="handle"
        )
        == 1
    )
    assert delta("eventboard_idempotency_total", pattern="events.create", result="recorded") == 1
    assert delta("eventboard_idempotency_total", pattern="events.create", result="replayed") == 1
    requests = [
        (labels, v)
        for (name, labels), v in after.items()
        if name == "eventboard_requests_total" and ("path", "/events/{event_id}") in labels
    ]
    assert requests, "HTTP requests are counted by route template"
    assert WORKSHOP_ID not in response.text  # raw ids never become labels
    assert "/health" not in response.text


# Breakers


async def test_a_failing_command_is_cut_off_fast_and_shown_in_health(start: Start):
    faults = (Fault(cmd="events.findOne", error="unavailable", error_rate=1.0),)
    async with start(
        bus_faults=faults, breaker_window=4, breaker_min_calls=4, retry_base_delay=0.0
    ) as (client, admin):
        failing = [
            (await client.get(f"/events/{WORKSHOP_ID}", headers=admin)).json()["code"]
            for _ in range(4)
        ]
        began = time.perf_counter()
        cut_off = await client.get(f"/events/{WORKSHOP_ID}", headers=admin)
        elapsed = time.perf_counter() - began
        health = (await client.get("/health")).json()
        metrics = (await client.get("/metrics")).text
        other_command = await client.get("/events", headers=admin)

    assert failing == ["INJECTED_FAULT"] * 4
    assert cut_off.status_code == 503
    assert cut_off.json()["code"] == "CIRCUIT_OPEN"
    assert int(cut_off.headers["retry-after"]) >= 1
    assert elapsed < 0.5  # the read's deadline is 5 s
    assert health["status"] == "degraded"
    assert health["checks"]["breaker:events.findOne"] == {"status": "open"}
    assert 'eventboard_breaker_state{pattern="events.findOne"} 2.0' in metrics
    assert other_command.status_code == 200  # the module's other commands still run


# Tracing


async def test_one_trace_links_the_http_request_the_bus_and_sql(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    settings = make_settings(tmp_path / "trace.db", log_format="json", log_level="INFO")
    app = create_app(settings, tracer_provider=provider)
    async with serve(app) as client:
        token = await login(client, "admin@acme.com")
        exporter.clear()
        capsys.readouterr()
        response = await client.get(
            f"/events/{WORKSHOP_ID}",
            headers={
                "Authorization": f"Bearer {token}",
                "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01",
            },
        )
    spans = exporter.get_finished_spans()
    requests = [
        json.loads(line)
        for line in capsys.readouterr().err.splitlines()
        if line.startswith("{") and '"message":"request"' in line
    ]

    assert response.status_code == 200
    assert [record["trace_id"] for record in requests] == [trace_id]  # logs carry the trace id
    assert {format(s.context.trace_id, "032x") for s in spans} == {trace_id}
    by_name = {s.name: s for s in spans}
    send = by_name["bus.send events.findOne"]
    handle = by_name["bus.handle events.findOne"]
    sql = [s for s in spans if s.attributes and s.attributes.get("db.system") == "sqlite"]
    http = [s for s in spans if s.name.startswith("GET /events")]
    assert http, [s.name for s in spans]
    assert handle.parent is not None and handle.parent.span_id == send.context.span_id
    assert sql and all(s.parent is not None for s in sql)
    assert any(s.parent.span_id == handle.context.span_id for s in sql if s.parent)
    assert send.attributes is not None and send.attributes["bus.outcome"] == "ok"
    assert handle.attributes is not None
    assert handle.attributes["bus.correlation_id"] == response.headers["x-correlation-id"]


# Rate limits


async def failed_login(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await client.post("/auth/login", json={"email": email, "password": "Wrong123!"})


async def test_the_11th_failed_login_is_429_and_not_before(start: Start):
    async with start() as (client, _):
        first_ten = [(await failed_login(client, "admin@acme.com")).status_code for _ in range(10)]
        eleventh = await client.post(
            "/auth/login", json={"email": "Admin@Acme.com", "password": "Password123!"}
        )
        other_email = await failed_login(client, "user@acme.com")

    assert first_ten == [401] * 10
    assert eleventh.status_code == 429
    assert eleventh.headers["content-type"] == "application/problem+json"
    assert int(eleventh.headers["retry-after"]) >= 1
    assert eleventh.headers["ratelimit-limit"] == "10"
    assert eleventh.headers["ratelimit-remaining"] == "0"
    assert other_email.status_code == 401


async def test_the_per_client_limit_answers_429_with_headers(start: Start):
    async with start(rate_limit_per_minute=5) as (client, _):
        # the fixture's login used one request of the five
        statuses = [(await client.get("/nowhere")).status_code for _ in range(5)]
        limited = await client.get("/nowhere", headers={"X-Correlation-ID": "limited-1"})

    assert statuses == [404] * 4 + [429]
    assert limited.status_code == 429
    assert limited.json()["code"] == "RATE_LIMITED"
    assert limited.json()["correlationId"] == "limited-1"
    assert limited.headers["x-correlation-id"] == "limited-1"
    assert limited.headers["ratelimit-limit"] == "5"


async def test_every_response_under_the_per_client_limit_says_what_is_left(start: Start):
    async with start(rate_limit_per_minute=50) as (client, admin):
        found = await client.get("/events", headers=admin)
        missing = await client.get("/nowhere")
        probe = await client.get("/health/live")

    assert found.status_code == 200 and missing.status_code == 404
    assert found.headers["ratelimit-limit"] == missing.headers["ratelimit-limit"] == "50"
    remaining = int(found.headers["ratelimit-remaining"])
    assert int(missing.headers["ratelimit-remaining"]) == remaining - 1
    assert 1 <= int(found.headers["ratelimit-reset"]) <= 60
    assert "ratelimit-limit" not in probe.headers  # the probes are not limited


def warnings_in(logged: str) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in logged.splitlines() if line.startswith("{")]
    return [r for r in records if r["level"] == "WARNING"]


async def test_refusals_are_logged_once_a_minute_with_the_client_never_the_email(
    start: Start, capsys: pytest.CaptureFixture[str]
):
    async with start(login_failures_per_15min=2, log_format="json") as (client, _):
        capsys.readouterr()
        for _ in range(5):
            await failed_login(client, "Admin@Acme.com")
        logged = capsys.readouterr().err

    [lockout] = [w for w in warnings_in(logged) if w["limit"] == "login"]
    assert lockout["message"] == "login locked out after failed attempts"
    assert lockout["client"] == "127.0.0.1"
    assert len(lockout["email_sha256"]) == 16
    assert "acme.com" not in logged.lower() and "Wrong123!" not in logged


async def test_per_client_refusals_are_logged(start: Start, capsys: pytest.CaptureFixture[str]):
    async with start(rate_limit_per_minute=3, log_format="json") as (client, _):
        capsys.readouterr()
        statuses = [(await client.get("/nowhere")).status_code for _ in range(4)]
        logged = capsys.readouterr().err

    assert statuses[-2:] == [429, 429]
    [refusal] = [w for w in warnings_in(logged) if w["limit"] == "client"]
    assert (refusal["client"], refusal["allowed"]) == ("127.0.0.1", 3)


@pytest.mark.parametrize(
    ("headers", "challenge"),
    [
        ({}, "Bearer"),
        ({"Authorization": "Bearer not-a-token"}, 'Bearer error="invalid_token"'),
        ({"Authorization": "Basic YTpi"}, 'Bearer error="invalid_token"'),
    ],
)
async def test_every_401_carries_a_bearer_challenge(
    client: httpx.AsyncClient, headers: dict[str, str], challenge: str
):
    response = await client.get("/auth/me", headers=headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == challenge


async def test_a_failed_login_401_carries_a_bearer_challenge_too(client: httpx.AsyncClient):
    response = await failed_login(client, "admin@acme.com")

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.skipif(
    not os.environ.get("TEST_REDIS_URL"),
    reason="TEST_REDIS_URL is not set (e.g. redis://127.0.0.1:6379/0)",
)
async def test_login_limits_hold_across_processes_with_redis(tmp_path: Path):
    email = f"redis-{uuid.uuid4().hex[:8]}@acme.com"
    settings = make_settings(tmp_path / "redis.db", redis_url=os.environ["TEST_REDIS_URL"])
    async with serve(create_app(settings)) as first, serve(create_app(settings)) as second:
        statuses = [(await failed_login(first, email)).status_code for _ in range(5)]
        statuses += [(await failed_login(second, email)).status_code for _ in range(5)]
        eleventh = await failed_login(first, email)

    assert statuses == [401] * 10
    assert eleventh.status_code == 429
