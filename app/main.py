"""Composition root: build everything from Settings and wire it together.

`uvicorn app.main:app` asks this module for `app`; it is built on first access, so importing this
module (as tests do) reads no environment and touches no database.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from litestar import Litestar
from loguru import logger

from app.bus.bus import Bus
from app.bus.correlation import CorrelationMiddleware
from app.bus.idempotency import IdempotencyMiddleware, purge_forever
from app.bus.logging import HandleLoggingMiddleware, SendLoggingMiddleware
from app.bus.pipeline import HandleMiddleware
from app.bus.retry import RetryMiddleware
from app.bus.testing import FaultMiddleware, WireRoundTripTransport
from app.bus.timeout import DeadlineMiddleware, TimeoutMiddleware
from app.bus.transaction import TransactionMiddleware
from app.bus.transports.local import LocalTransport
from app.db import create_engine, upgrade_to_head
from app.gateway.http import create_gateway
from app.logging import configure_logging
from app.modules.auth import module as auth_module
from app.modules.events import module as events_module
from app.settings import Settings, SettingsError

SHUTDOWN_GRACE_SECONDS = 10.0


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env()
    configure_logging(settings)
    engine = create_engine(settings.database_url)

    handle_middleware: list[HandleMiddleware] = [
        CorrelationMiddleware(),
        HandleLoggingMiddleware(),
        DeadlineMiddleware(),
        IdempotencyMiddleware(engine, secret=settings.jwt_secret, ttl=settings.idempotency_ttl),
        TransactionMiddleware(engine),
    ]
    if settings.bus_faults:
        handle_middleware.append(FaultMiddleware(settings.bus_faults))
        logger.warning("fault injection is on: {}", [f.cmd for f in settings.bus_faults])
    bus = Bus(
        send_middleware=[
            RetryMiddleware(
                base_delay=settings.retry_base_delay,
                multiplier=settings.retry_multiplier,
                max_delay=settings.retry_max_delay,
                budget_ratio=settings.retry_budget_ratio,
                budget_min_per_second=settings.retry_budget_min_per_second,
            ),
            SendLoggingMiddleware(),
            TimeoutMiddleware(),
        ],
        handle_middleware=handle_middleware,
    )
    auth_module.register(bus, settings)
    events_module.register(bus)
    transport = (
        WireRoundTripTransport(bus)
        if settings.bus_transport == "local-wire"
        else LocalTransport(bus)
    )
    bus.connect(transport)

    background: set[asyncio.Task[None]] = set()

    async def start() -> None:
        if not settings.is_production:
            await upgrade_to_head(engine)
        if settings.seed_demo_data:
            await auth_module.seed_demo_data(engine, settings)
            await events_module.seed_demo_data(engine)
        background.add(
            asyncio.create_task(purge_forever(engine, settings.idempotency_purge_interval))
        )
        logger.bind(env=settings.app_env, transport=settings.bus_transport).info("started")

    async def stop() -> None:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await transport.drain(SHUTDOWN_GRACE_SECONDS)
        await engine.dispose()

    return create_gateway(settings, bus, on_startup=[start], on_shutdown=[stop])


def __getattr__(name: str) -> Any:
    if name != "app":
        raise AttributeError(name)
    try:
        application = create_app()
    except SettingsError as exc:
        print(f"eventboard: invalid configuration: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    globals()["app"] = application
    return application
