"""The HTTP process: `create_app(settings)` composes storage, the bus and its modules (through
`app.bootstrap`, as a worker does), the probes and the gateway, and runs their lifecycle.

`uvicorn app.main:app` asks this module for `app`; it is built on first access, so importing this
module (as tests do) reads no environment and touches no database.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from litestar import Litestar
from loguru import logger
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy.engine import make_url

from app import process, startup, telemetry
from app.bootstrap import Notifying, build_bus, purges, sending_side, start_notifying
from app.bus.idempotency import purge_forever
from app.bus.outbox import oldest_age
from app.gateway.controllers.health import NotificationsReport, Probes
from app.gateway.http import create_gateway
from app.gateway.ratelimit import RateLimits
from app.logging import configure_logging
from app.modules.auth import module as auth_module
from app.settings import Settings, SettingsError
from app.storage.connect import open_database
from app.storage.engine import create_engine, upgrade_to_head

SERVICE_NAME = "eventboard-gateway"


def create_app(
    settings: Settings | None = None, *, tracer_provider: TracerProvider | None = None
) -> Litestar:
    """Build the app. `tracer_provider` overrides the one OTEL_TRACES_EXPORTER would make
    (tests pass one with an in-memory exporter)."""
    settings = settings or Settings.from_env()
    tracer_provider = tracer_provider or telemetry.tracer_provider(settings, SERVICE_NAME)
    configure_logging(settings, trace_ids=tracer_provider is not None)
    engine = create_engine(settings.database_url)  # migrations and seeding
    database = open_database(
        settings.database_url,
        tracer=tracer_provider.get_tracer("eventboard.sql") if tracer_provider else None,
    )
    parts = build_bus(settings, database, tracer_provider)
    bus = parts.bus
    sending = sending_side(settings, parts)
    bus.connect(sending.transport)
    remote = sending.remote
    limits = RateLimits(settings)

    async def bus_accepting() -> None:
        if not bus.accepting:
            raise RuntimeError("draining: not accepting new commands")
        if remote is not None and not remote.connected:
            raise RuntimeError("not connected to NATS")

    def workers() -> dict[str, int]:
        local = dict.fromkeys(parts.modules - sending.remote_modules, 1)
        return local | (remote.workers if remote is not None else {})

    async def notifications() -> NotificationsReport:
        dead = [await group.dead_letter_count(database) for group in bus.subscribers.values()]
        lags = [await oldest_age(database, outbox) for outbox in bus.outboxes.values()]
        return NotificationsReport(
            dead_letters=sum(dead), outbox_lag_seconds=round(max(lags, default=0.0), 3)
        )

    probes = Probes(
        checks={"database": database.ping, "bus": bus_accepting},
        breakers=parts.breakers.states,
        workers=workers,
        notifications=notifications,
    )
    background: set[asyncio.Task[None]] = set()
    restore_signal = _nothing
    notifying: Notifying | None = None

    async def start() -> None:
        nonlocal restore_signal, notifying
        if not settings.is_production:
            await upgrade_to_head(engine)
        if settings.seed_demo_data:
            for module in parts.running.values():
                await module.seed_demo_data(engine)
        await database.open()
        if remote is not None:
            await remote.open()
        notifying = start_notifying(
            settings,
            parts,
            database,
            set(parts.modules - sending.remote_modules),
            remote.client if remote is not None else None,
        )
        background.add(
            asyncio.create_task(
                purge_forever(
                    database,
                    settings.idempotency_purge_interval,
                    also=purges(settings, parts, database),
                )
            )
        )
        restore_signal = process.drain_on_sigterm(
            bus,
            sending.transport.drain,
            grace=settings.shutdown_grace_seconds,
            delay=settings.shutdown_delay_seconds,
        )
        for warning in settings.startup_warnings():
            logger.warning(warning)
        if settings.app_env == "development":
            logger.info("database: {}", make_url(settings.database_url).database or "-")
            if settings.seed_demo_data:
                logger.info("demo logins: {}", auth_module.demo_logins())
        logger.bind(
            env=settings.app_env,
            transport=settings.bus_transport,
            remote=",".join(sorted(sending.remote_modules)) or "-",
        ).info("started")

    async def stop() -> None:
        """Refuse new commands, let in-flight ones finish within the grace period, then close."""
        bus.stop_accepting()
        await sending.transport.drain(settings.shutdown_grace_seconds)
        if notifying is not None:
            await notifying.drain(settings.shutdown_grace_seconds)
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        if remote is not None:
            await remote.close()
        await limits.close()
        if tracer_provider is not None:
            await telemetry.shutdown_tracing(tracer_provider)
        await database.close()
        parts.close()
        await engine.dispose()
        restore_signal()
        logger.info("stopped")

    app = create_gateway(
        settings,
        bus,
        probes=probes,
        limits=limits,
        tracer_provider=tracer_provider,
        on_startup=[start],
        on_shutdown=[stop],
    )
    app.state.faults = parts.faults  # how many faults were injected, for tests and chaos reports
    return app


def _nothing() -> None:
    return None


def __getattr__(name: str) -> Any:
    """`app`, built once from the environment: a bad setting or an unreachable dependency is one
    line on stderr and an exit code (2, 3), never a traceback."""
    if name != "app":
        raise AttributeError(name)
    try:
        settings = Settings.from_env()
        startup.check(settings)
        application = create_app(settings)
    except SettingsError as exc:
        print(f"eventboard: invalid configuration: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except startup.StartupError as exc:
        print(f"eventboard: cannot start: {exc}", file=sys.stderr)
        raise SystemExit(3) from None
    application.on_startup.append(process.tune_gc_on_startup)
    globals()["app"] = application
    return application
