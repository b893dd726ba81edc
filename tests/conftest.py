"""Shared fixtures: a real SQLite file per test, the real app, real tokens for the seeded users."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Litestar
from sqlalchemy.engine import make_url

from app.main import create_app
from app.settings import MODULES, Settings

TEST_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"
PASSWORD = "Password123!"

ACME_ID = "10000000-0000-0000-0000-000000000001"
TECH_ID = "10000000-0000-0000-0000-000000000002"
ADMIN_ID = "20000000-0000-0000-0000-000000000001"
MODERATOR_ID = "20000000-0000-0000-0000-000000000002"
USER_ID = "20000000-0000-0000-0000-000000000003"
TECH_USER_ID = "20000000-0000-0000-0000-000000000004"
CONFERENCE_ID = "00000000-0000-0000-0000-000000000001"  # APPROVED, acme, by admin
WORKSHOP_ID = "00000000-0000-0000-0000-000000000002"  # SUBMITTED, acme, by user@acme.com
SUMMIT_ID = "00000000-0000-0000-0000-000000000003"  # DRAFT, tech-innovators

EMAILS = {
    "admin": "admin@acme.com",
    "moderator": "moderator@acme.com",
    "user": "user@acme.com",
    "tech": "user@techinnovators.com",
}


POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL")


@asynccontextmanager
async def fresh_postgres_database() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database for one test, dropped afterwards."""
    if not POSTGRES_URL:
        pytest.skip(
            "TEST_POSTGRES_URL is not set (a server to create test databases on, "
            "e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/postgres)"
        )
    import asyncpg

    server = make_url(POSTGRES_URL)
    name = f"eventboard_test_{uuid.uuid4().hex[:12]}"

    async def run(statement: str) -> None:
        admin = await asyncpg.connect(
            host=server.host,
            port=server.port or 5432,
            user=server.username,
            password=server.password,
            database=server.database or "postgres",
        )
        try:
            await admin.execute(statement)
        finally:
            await admin.close()

    await run(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        await run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_settings(database: Path | str, **overrides: object) -> Settings:
    """Test settings on a SQLite file (a path) or on a database URL."""
    url = database if isinstance(database, str) else f"sqlite+aiosqlite:///{database}"
    values: dict[str, object] = {
        "app_env": "test",
        "database_url": url,
        "jwt_secret": TEST_SECRET,
        "bcrypt_rounds": 4,
        "bus_transport": "local-wire",
        "log_level": "WARNING",
        # A deployment of its own on the shared NATS server: no test sees another's workers.
        "nats_subject_prefix": f"test-{uuid.uuid4().hex[:12]}",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "eventboard.db"


STACK = os.environ.get("TEST_STACK", "sqlite-local")
"""`sqlite-local` (default) or `postgresql-nats`: where the tests built on the `client` fixture
run; `TEST_STACK=postgresql-nats` runs them all on PostgreSQL with workers over NATS."""


@pytest.fixture
def db_backend() -> str:
    """The stack's database; a test module that runs on both overrides it with both."""
    return "postgresql" if STACK == "postgresql-nats" else "sqlite"


@pytest.fixture
async def database_url(database: Path, db_backend: str) -> AsyncIterator[str]:
    if db_backend == "sqlite":
        yield f"sqlite+aiosqlite:///{database}"
        return
    async with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


both_transports = pytest.fixture(params=["local", "nats"])(lambda request: request.param)
"""In a test module: `bus_mode = both_transports` runs its tests in process and over NATS."""

both_databases = pytest.fixture(params=["sqlite", "postgresql"])(lambda request: request.param)
"""In a test module: `db_backend = both_databases` runs its tests on SQLite and PostgreSQL."""


NATS_URL = os.environ.get("TEST_NATS_URL")


def nats_url() -> str:
    if not NATS_URL:
        pytest.skip("TEST_NATS_URL is not set (a NATS server, e.g. nats://127.0.0.1:4222)")
    return NATS_URL


@asynccontextmanager
async def nats_workers(settings: Settings, count: int = 1) -> AsyncIterator[list[Any]]:
    """`count` workers serving every module over NATS, each with a bus of its own (as separate
    processes would have), on the settings' database: their commands, their outboxes' relays
    and the audit module's notification consumer."""
    from app.bootstrap import build_bus, start_notifying
    from app.bus.transports.jetstream import stream_name
    from app.bus.transports.local import LocalTransport
    from app.bus.transports.nats_connection import NatsServer, Subjects, close, connect
    from app.bus.transports.nats_server import ModuleServer
    from app.storage.connect import open_database

    servers: list[Any] = []
    clients = []
    databases = []
    notifying = []
    try:
        for number in range(count):
            database = open_database(settings.database_url)
            databases.append(database)
            parts = build_bus(settings, database)
            bus = parts.bus
            bus.connect(LocalTransport(bus))
            client = await connect(NatsServer.of(settings), f"test-worker-{number}")
            clients.append(client)
            for module in MODULES:
                server = ModuleServer(bus, client, module, Subjects(settings.nats_subject_prefix))
                await server.start()
                servers.append(server)
            notifying.append(start_notifying(settings, parts, database, set(MODULES), client))
        yield servers
    finally:
        for server in servers:
            await server.drain(5)
        for side in notifying:
            await side.drain(5)
        if clients and clients[0].is_connected:  # the test deployment's stream goes with it
            with contextlib.suppress(Exception):
                await (
                    clients[0]
                    .jetstream()
                    .delete_stream(stream_name(Subjects(settings.nats_subject_prefix)))
                )
        for client in clients:
            await close(client)
        for database in databases:
            await database.close()


@pytest.fixture
def bus_mode() -> str:
    """The stack's transport; a test module that runs over both overrides it with both."""
    return "nats" if STACK == "postgresql-nats" else "local"


@pytest.fixture
def app(settings: Settings, bus_mode: str) -> Litestar:
    if bus_mode == "nats":
        settings = msgspec.structs.replace(
            settings, bus_transport="nats", nats_url=nats_url(), bus_local_modules=()
        )
    return create_app(settings)


def client_at(app: Litestar, address: str) -> httpx.AsyncClient:
    """Another HTTP client of an app that `serve` started, connecting from `address`."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@asynccontextmanager
async def serve(app: Litestar, address: str = "127.0.0.1") -> AsyncIterator[httpx.AsyncClient]:
    """The app started (lifespan) and an HTTP client calling it in this event loop, connecting
    from `address`.

    Not Litestar's AsyncTestClient: that one runs the app on a portal thread and handles one
    request at a time, so concurrent requests in a test would silently be serialised.
    """
    started, stop = asyncio.Event(), asyncio.Event()

    async def lifespan() -> None:
        # One task enters and leaves the lifespan (its anyio cancel scope insists), while
        # fixture set-up and tear-down may run in different tasks.
        try:
            async with app.lifespan():
                started.set()
                await stop.wait()
        finally:
            started.set()

    running = asyncio.create_task(lifespan())
    await started.wait()
    if running.done():
        running.result()  # start-up failed: raise its error here
    try:
        async with client_at(app, address) as client:
            yield client
    finally:
        stop.set()
        await running


@pytest.fixture
async def client(
    app: Litestar, settings: Settings, bus_mode: str
) -> AsyncIterator[httpx.AsyncClient]:
    if bus_mode == "nats":
        async with serve(app) as client:  # the gateway migrates and seeds, then workers start
            remote = msgspec.structs.replace(settings, nats_url=nats_url(), seed_demo_data=False)
            async with nats_workers(remote):
                await until_every_module_has_a_worker(client)
                yield client
        return
    async with serve(app) as client:
        yield client


async def until_every_module_has_a_worker(client: httpx.AsyncClient) -> None:
    """As `make cluster` does: /health is 200 once the gateway's census (a second apart) has
    counted a worker for every module. At most 5 s."""
    for _ in range(100):
        health = await client.get("/health")
        if health.status_code == 200:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"a module has no worker after 5 s: {health.text}")


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> str:
    response = await client.post("/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    token: str = response.json()["accessToken"]
    return token


@pytest.fixture
async def auth(client: httpx.AsyncClient) -> dict[str, dict[str, str]]:
    """`auth["admin"]` etc.: Authorization headers for each seeded user."""
    return {
        name: {"Authorization": f"Bearer {await login(client, email)}"}
        for name, email in EMAILS.items()
    }


def new_event(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "title": "Quarterly Planning",
        "description": "Plan the next quarter together.",
        "location": "Room 4",
        "startDate": "2026-09-01T09:00:00.000Z",
        "endDate": "2026-09-01T12:00:00.000Z",
    }
    body.update(overrides)
    return body
