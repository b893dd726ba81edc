"""`python -m app.worker events [auth] [audit]`: serve modules over NATS, in a process of their own.

Same settings as the app (DATABASE_URL, NATS_URL, OTEL_*, ...), same handle-side middleware
(logging, deadline, tracing, idempotency, transaction), built by the same `app.bootstrap`. Start
as many as the load needs: each module is a NATS queue group, so the workers of a module share
its commands. A worker also relays its modules' outboxes to JetStream and runs their
notification subscribers (the audit module's), sharing each module's durable consumer. On
SIGTERM or SIGINT a worker stops taking commands, finishes those in flight
(SHUTDOWN_GRACE_SECONDS), publishes what they emitted, finishes the notification in hand, and
exits.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from loguru import logger
from nats.aio.client import Client

from app import startup, telemetry
from app.bootstrap import build_bus, start_notifying
from app.bus.transports.local import LocalTransport
from app.bus.transports.nats_connection import NatsServer, Subjects, close, connect
from app.bus.transports.nats_server import ModuleServer
from app.logging import configure_logging
from app.settings import MODULES, Settings, SettingsError
from app.storage.connect import open_database
from app.storage.engine import create_engine, upgrade_to_head
from app.storage.port import Database
from app.worker_port import WorkerPort


def service_name(modules: list[str]) -> str:
    """The worker's OpenTelemetry service name: `eventboard-events`, `eventboard-auth+events`."""
    return f"eventboard-{'+'.join(modules)}"


async def serve(modules: list[str], settings: Settings, stop: asyncio.Event) -> None:
    tracer_provider = telemetry.tracer_provider(settings, service_name(modules))
    configure_logging(settings, trace_ids=tracer_provider is not None)
    for warning in settings.startup_warnings():
        logger.warning(warning)
    engine = create_engine(settings.database_url)
    if not settings.is_production:
        await upgrade_to_head(engine)
    await engine.dispose()
    database = open_database(
        settings.database_url,
        tracer=tracer_provider.get_tracer("eventboard.sql") if tracer_provider else None,
    )
    await database.open()
    parts = build_bus(settings, database, tracer_provider, worker=True)
    bus = parts.bus
    bus.connect(LocalTransport(bus))  # what a handler sends itself stays in this process
    client = await connect(NatsServer.of(settings), f"eventboard-worker-{'+'.join(modules)}")
    subjects = Subjects(settings.nats_subject_prefix)
    servers = [ModuleServer(bus, client, module, subjects) for module in modules]
    for server in servers:
        await server.start()
    notifying = start_notifying(settings, parts, database, set(modules), client)
    port = _worker_port(settings, database, client, stop)
    logger.bind(modules=",".join(modules)).info("worker ready")
    await stop.wait()
    logger.info("draining: finishing in-flight commands")
    for server in servers:
        await server.drain(settings.shutdown_grace_seconds)
    await notifying.drain(settings.shutdown_grace_seconds)
    await close(client)
    if port is not None:
        port.stop()
    await database.close()
    parts.close()
    if tracer_provider is not None:
        await telemetry.shutdown_tracing(tracer_provider)
    logger.info("worker stopped")


def _worker_port(
    settings: Settings, database: Database, client: Client, stop: asyncio.Event
) -> WorkerPort | None:
    """METRICS_PORT: /metrics and the probes, ready while NATS is connected, the database
    answers and the worker is not draining."""
    if settings.metrics_port is None:
        return None

    async def nats_connected() -> None:
        if not client.is_connected:
            raise RuntimeError("not connected to NATS")

    async def not_draining() -> None:
        if stop.is_set():
            raise RuntimeError("draining")

    checks = {"database": database.ping, "bus": nats_connected, "draining": not_draining}
    port = WorkerPort(
        settings.metrics_host, settings.metrics_port, checks, asyncio.get_running_loop()
    )
    port.start()
    return port


def main(argv: list[str]) -> int:
    modules = argv or list(MODULES)
    unknown = [m for m in modules if m not in MODULES]
    if unknown:
        print(f"usage: python -m app.worker [{'|'.join(MODULES)}] ...", file=sys.stderr)
        return 2
    try:
        settings = Settings.from_env()
        startup.check(settings)
    except SettingsError as exc:
        print(f"eventboard worker: invalid configuration: {exc}", file=sys.stderr)
        return 2
    except startup.StartupError as exc:
        print(f"eventboard worker: cannot start: {exc}", file=sys.stderr)
        return 3

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await serve(modules, settings, stop)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
