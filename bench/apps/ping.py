"""`GET /bench/ping` behind the real gateway (its middleware, hooks, exception handling and request
log), answered two ways: `bus_app` sends a bench-only command through the real bus (both chains,
the in-process transport), `direct_app` awaits the same handler directly.

    uvicorn bench.apps.ping:bus_app      uvicorn bench.apps.ping:direct_app

Configured from the environment like the app (DATABASE_URL, JWT_SECRET, LOG_LEVEL, ...).
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Litestar, get

from app.bootstrap import build_bus
from app.bus.bus import Bus, Policy
from app.bus.pipeline import Context
from app.bus.transports.local import LocalTransport
from app.gateway.controllers.health import Probes
from app.gateway.http import create_gateway
from app.gateway.ratelimit import RateLimits
from app.logging import configure_logging
from app.process import tune_gc_on_startup
from app.settings import Settings
from app.storage.connect import open_database

PING = {"cmd": "bench.ping"}
POLICY = Policy(timeout=5.0, attempts=3)


class Ping(msgspec.Struct, frozen=True):
    value: int


class Pong(msgspec.Struct, frozen=True):
    pong: int


async def pong(payload: Ping, context: Context | None = None) -> Pong:
    return Pong(payload.value)


def _gateway(settings: Settings, bus: Bus, route: Any) -> Litestar:
    app = create_gateway(
        settings,
        bus,
        probes=Probes(checks={}, breakers=dict, workers=dict),
        limits=RateLimits(settings),
    )
    app.register(route)
    return app


def _build(through_bus: bool) -> Litestar:
    settings = Settings.from_env()
    configure_logging(settings)
    bus = build_bus(settings, open_database(settings.database_url)).bus
    bus.register(PING, Ping, pong, read_only=True)
    bus.connect(LocalTransport(bus))

    if through_bus:

        @get("/bench/ping", include_in_schema=False)
        async def ping() -> Pong:
            result: Pong = await bus.send(PING, Ping(1), policy=POLICY)
            return result

    else:

        @get("/bench/ping", include_in_schema=False)
        async def ping() -> Pong:
            return await pong(Ping(1))

    return _gateway(settings, bus, ping)


def __getattr__(name: str) -> Litestar:
    if name not in ("bus_app", "direct_app"):
        raise AttributeError(name)
    app = _build(through_bus=name == "bus_app")
    app.on_startup.append(tune_gc_on_startup)  # as the server process does
    globals()[name] = app
    return app
