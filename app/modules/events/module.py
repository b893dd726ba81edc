"""The events module's one entry point: `register` puts its handlers on the bus and returns the
module while it runs (its demo data)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from app.bus.bus import Bus
from app.bus.pipeline import Context
from app.identity import Principal
from app.modules.events import handlers, seed
from app.modules.events.contracts import (
    APPROVE_EVENT,
    CREATE_EVENT,
    DELETE_EVENT,
    EVENT_HISTORY,
    FIND_EVENT,
    LIST_EVENTS,
    REJECT_EVENT,
    SUBMIT_EVENT,
    TOPICS,
    UPDATE_EVENT,
)
from app.modules.events.uow import EventsUnitOfWork
from app.settings import Settings
from app.storage.engine import write_transaction

C = TypeVar("C")
R = TypeVar("R")


@dataclass(frozen=True)
class Running:
    """The module while it serves (it holds nothing that needs closing)."""

    async def seed_demo_data(self, engine: AsyncEngine) -> None:
        async with write_transaction(engine) as session:
            await seed.seed(session)

    def close(self) -> None:
        pass


def register(bus: Bus, settings: Settings) -> Running:
    for topic in TOPICS:
        bus.declare(topic)
    bus.handle(CREATE_EVENT, _bind(bus, handlers.create_event))
    bus.handle(LIST_EVENTS, _bind(bus, handlers.list_events))
    bus.handle(FIND_EVENT, _bind(bus, handlers.find_event))
    bus.handle(UPDATE_EVENT, _bind(bus, handlers.update_event))
    bus.handle(DELETE_EVENT, _bind(bus, handlers.delete_event))
    bus.handle(SUBMIT_EVENT, _bind(bus, handlers.submit_event))
    bus.handle(APPROVE_EVENT, _bind(bus, handlers.approve_event))
    bus.handle(REJECT_EVENT, _bind(bus, handlers.reject_event))
    bus.handle(EVENT_HISTORY, _bind(bus, handlers.event_history))
    return Running()


def _bind(
    bus: Bus, handler: Callable[[C, EventsUnitOfWork, Principal], Awaitable[R]]
) -> Callable[[C, Context], Awaitable[R]]:
    """Adapt `handler(cmd, uow, principal)` to the bus: every events command needs a principal,
    and records its changes through the bus (`uow.record`)."""

    @functools.wraps(handler)
    async def run(cmd: C, context: Context) -> R:
        principal = context.principal
        assert context.tx is not None, "events handlers run inside the transaction middleware"
        return await handler(cmd, EventsUnitOfWork(context.tx, bus), principal)

    return run


__all__ = ["Running", "register"]
