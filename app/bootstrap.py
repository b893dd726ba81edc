"""The bus and the modules, wired: the same in the HTTP process (`app.main`) and in a worker
(`app.worker`), so a module behaves alike wherever it runs; and the transport the HTTP process
sends its commands over. Nothing here knows about HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from loguru import logger
from nats.aio.client import Client
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy.ext.asyncio import AsyncEngine

from app.bus.breaker import Breakers
from app.bus.bus import Bus
from app.bus.idempotency import IdempotencyMiddleware
from app.bus.logging import DEBUG, INFO
from app.bus.outbox import Outbox, Relay, purge_published
from app.bus.pipeline import HandleMiddleware, SendMiddleware
from app.bus.retry import Retries
from app.bus.subscribers import LocalDelivery, Subscribers, backoff
from app.bus.tracing import HandleTracingMiddleware, SendTracingMiddleware
from app.bus.transaction import TransactionMiddleware
from app.bus.transports.jetstream import (
    JetStreamConsumer,
    JetStreamPublish,
    start_consumers,
)
from app.bus.transports.local import LocalTransport
from app.bus.transports.nats_client import NatsTransport
from app.bus.transports.nats_connection import NatsServer, Subjects
from app.bus.transports.routing import RoutingTransport
from app.bus.transports.wire import WireRoundTripTransport
from app.clock import utcnow
from app.faults import FaultMiddleware
from app.modules.audit import module as audit_module
from app.modules.auth import module as auth_module
from app.modules.events import module as events_module
from app.settings import Settings
from app.storage.port import Database


class RunningModule(Protocol):
    """What each module's `register` returns: the module while it serves."""

    async def seed_demo_data(self, engine: AsyncEngine) -> None: ...

    def close(self) -> None: ...


class Committed:
    """Called with its module when a command that emitted notifications has committed: wakes
    the relays."""

    def __init__(self) -> None:
        self.listeners: list[Callable[[str], None]] = []

    def __call__(self, module: str) -> None:
        for listener in self.listeners:
            listener(module)


@dataclass(frozen=True)
class BusParts:
    bus: Bus
    breakers: Breakers
    faults: FaultMiddleware | None
    running: dict[str, RunningModule]
    """Each module while it serves: the app and a worker seed and close them alike."""
    committed: Committed = field(default_factory=Committed)

    @property
    def modules(self) -> set[str]:
        return set(self.running)

    def close(self) -> None:
        for module in self.running.values():
            module.close()


def build_bus(
    settings: Settings,
    database: Database,
    tracer_provider: TracerProvider | None = None,
    *,
    worker: bool = False,
) -> BusParts:
    """The bus with both sides and every module registered: the same in the app and in a worker
    process, so a module behaves alike wherever it runs. A worker writes a line per command it
    handles at INFO; in the app, commands are on the request's line and theirs are DEBUG."""
    breakers = Breakers(
        window=settings.breaker_window,
        min_calls=settings.breaker_min_calls,
        failure_rate=settings.breaker_failure_rate,
        slow_call=settings.breaker_slow_call,
        open_seconds=settings.breaker_open_seconds,
        half_open_probes=settings.breaker_half_open_probes,
    )
    retries = Retries(
        base_delay=settings.retry_base_delay,
        multiplier=settings.retry_multiplier,
        max_delay=settings.retry_max_delay,
        budget_ratio=settings.retry_budget_ratio,
        budget_min_per_second=settings.retry_budget_min_per_second,
    )
    faults = FaultMiddleware(settings.bus_faults) if settings.bus_faults else None
    committed = Committed()
    bus = Bus(
        breakers=breakers,
        retries=retries,
        send_middleware=_send_middleware(tracer_provider),
        handle_middleware=_handle_middleware(
            settings, database, tracer_provider, faults, committed
        ),
        handled_level=INFO if worker else DEBUG,
        slow_command=settings.slow_command_ms / 1000,
        per_try=settings.per_try_timeout,
    )
    running: dict[str, RunningModule] = {
        "auth": auth_module.register(bus, settings),
        "events": events_module.register(bus, settings),
        "audit": audit_module.register(bus, settings),
    }
    if faults is not None:
        for group in bus.subscribers.values():
            group.faults = faults.inject
    return BusParts(bus, breakers, faults, running, committed)


def _send_middleware(tracer_provider: TracerProvider | None) -> list[SendMiddleware]:
    if tracer_provider is None:
        return []
    return [SendTracingMiddleware(tracer_provider.get_tracer("eventboard.bus"))]


def _handle_middleware(
    settings: Settings,
    database: Database,
    tracer_provider: TracerProvider | None,
    faults: FaultMiddleware | None,
    committed: Committed,
) -> list[HandleMiddleware]:
    """The handle side's chain, outermost first. Before it, `Bus.dispatch` refuses work whose
    deadline has passed and runs the rest under the deadline; after it, the handler."""
    tracing = (
        HandleTracingMiddleware(tracer_provider.get_tracer("eventboard.bus"))
        if tracer_provider is not None
        else None
    )
    if faults is not None:
        logger.warning("fault injection is on: {}", [f.cmd for f in settings.bus_faults])
    chain: list[HandleMiddleware | None] = [
        # 1. A span for the whole handling, its outcome included.
        tracing,
        # 2. Idempotency, outside the transaction: a replay opens no write transaction, and a
        #    domain refusal is recorded in one of its own. A result is recorded *inside* the
        #    command's transaction, by the record step it hands the transaction (see
        #    bus/idempotency.py), so a committed change always has its record.
        IdempotencyMiddleware(database, secret=settings.jwt_secret, ttl=settings.idempotency_ttl),
        # 3. The command's transaction: committed when the handler returns, rolled back when it
        #    raises or is cancelled at the deadline. Notifications the command emitted are
        #    outbox rows of this transaction; its commit wakes the relay (`committed`).
        TransactionMiddleware(database, committed),
        # 4. Injected faults (BUS_FAULTS), inside the transaction, so an injected error rolls it
        #    back as a real one would.
        faults,
    ]
    return [middleware for middleware in chain if middleware is not None]


@dataclass(frozen=True)
class SendingSide:
    """How the HTTP process reaches the modules."""

    transport: LocalTransport | RoutingTransport
    remote: NatsTransport | None
    """The NATS side, when some modules are served by workers."""
    remote_modules: frozenset[str]


def sending_side(
    settings: Settings, parts: BusParts, *, name: str = "eventboard-gateway"
) -> SendingSide:
    """BUS_TRANSPORT: `local` (handled in this process), `local-wire` (the same, every message
    through the wire codec), or `nats` (every module but BUS_LOCAL_MODULES served by workers)."""
    bus = parts.bus
    local = (
        WireRoundTripTransport(bus)
        if settings.bus_transport == "local-wire"
        else LocalTransport(bus)
    )
    remote_modules = (
        frozenset(parts.modules - set(settings.bus_local_modules))
        if settings.bus_transport == "nats"
        else frozenset()
    )
    if not remote_modules:
        return SendingSide(local, None, remote_modules)
    subjects = Subjects(settings.nats_subject_prefix)
    server = NatsServer.of(settings)
    remote = NatsTransport(bus, server, name, subjects, remote_modules)
    routing = RoutingTransport(local, remote, frozenset(settings.bus_local_modules))
    return SendingSide(routing, remote, remote_modules)


@dataclass
class Notifying:
    """A process's side of notifications: the relay of the outboxes of the modules it serves,
    and the subscribers of those modules (in process, or JetStream consumers)."""

    relay: Relay
    consumers: list[JetStreamConsumer]

    async def drain(self, grace: float) -> None:
        """On SIGTERM, after the commands: the relay publishes what has committed and stops;
        the consumers finish the notification in hand and stop fetching."""
        await asyncio.gather(
            self.relay.drain(grace), *(consumer.drain(grace) for consumer in self.consumers)
        )


def start_notifying(
    settings: Settings,
    parts: BusParts,
    database: Database,
    modules: set[str],
    client: Client | None,
) -> Notifying:
    """Relay the outboxes of `modules` and run their subscribers: in process when `client` is
    None (every subscriber is here too), else over JetStream on that NATS connection."""
    bus = parts.bus
    outboxes = [bus.outboxes[m] for m in sorted(modules) if m in bus.outboxes]
    groups = [bus.subscribers[m] for m in sorted(modules) if m in bus.subscribers]
    delay = backoff(settings.notification_backoff)
    consumers: list[JetStreamConsumer] = []
    if client is None:
        publish: LocalDelivery | JetStreamPublish = LocalDelivery(
            database,
            list(bus.subscribers.values()),
            attempts=settings.notification_attempts,
            delay=delay,
            sleep=asyncio.sleep,
        )
    else:
        subjects = Subjects(settings.nats_subject_prefix)
        retention = settings.notification_retention
        publish = JetStreamPublish(client, subjects, database, retention)
        consumers = start_consumers(
            client,
            subjects,
            database,
            groups,
            attempts=settings.notification_attempts,
            delay=delay,
            retention=retention,
        )
    relay = Relay(outboxes, publish, database=database, poll=settings.notification_poll_seconds)
    parts.committed.listeners.append(relay.wake)
    relay.start()
    return Notifying(relay, consumers)


def purges(
    settings: Settings, parts: BusParts, database: Database
) -> list[Callable[[], Awaitable[int]]]:
    """What the background purge removes besides expired idempotency keys: published outbox rows
    and inbox records older than NOTIFICATION_RETENTION."""
    retention = settings.notification_retention

    def outbox_purge(outbox: Outbox) -> Callable[[], Awaitable[int]]:
        return lambda: purge_published(database, outbox, retention)

    def inbox_purge(group: Subscribers) -> Callable[[], Awaitable[int]]:
        return lambda: group.purge(database, utcnow() - timedelta(seconds=retention))

    return [outbox_purge(o) for o in parts.bus.outboxes.values()] + [
        inbox_purge(g) for g in parts.bus.subscribers.values()
    ]
