"""Shared fixtures: a real SQLite file per test, the real app, real tokens for the seeded users."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from litestar import Litestar

from app.main import create_app
from app.settings import Settings

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


def make_settings(database: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "app_env": "test",
        "database_url": f"sqlite+aiosqlite:///{database}",
        "jwt_secret": TEST_SECRET,
        "bcrypt_rounds": 4,
        "bus_transport": "local-wire",
        "log_level": "WARNING",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "eventboard.db"


@pytest.fixture
def settings(database: Path) -> Settings:
    return make_settings(database)


@pytest.fixture
def app(settings: Settings) -> Litestar:
    return create_app(settings)


@asynccontextmanager
async def serve(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """The app started (lifespan) and an HTTP client calling it in this event loop.

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
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]  # narrower ASGI types
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client
    finally:
        stop.set()
        await running


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(app) as client:
        yield client


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
