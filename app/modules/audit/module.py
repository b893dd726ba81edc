"""The audit module's one entry point: `register` subscribes it to the events and auth modules'
notifications and puts its command on the bus. It reads no other module's tables, so it runs
wherever its subscribers run: in the app, or as `python -m app.worker audit`."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from app.bus.bus import Bus
from app.bus.pipeline import Context
from app.modules.audit import handlers
from app.modules.audit.contracts import LIST_AUDIT, AuditPage, ListAudit
from app.modules.audit.uow import AuditUnitOfWork
from app.modules.auth.contracts import (
    MEMBER_DEACTIVATED,
    MEMBER_JOINED,
    MEMBER_REACTIVATED,
    MEMBER_ROLE_CHANGED,
    ORGANIZATION_CREATED,
)
from app.modules.events.contracts import TOPICS as EVENT_TOPICS
from app.settings import Settings

MODULE = "audit"


@dataclass(frozen=True)
class Running:
    """The module while it serves (no demo data: the log starts with the first change)."""

    async def seed_demo_data(self, engine: AsyncEngine) -> None:
        return None

    def close(self) -> None:
        pass


def register(bus: Bus, settings: Settings) -> Running:
    for topic in EVENT_TOPICS:
        bus.subscribe(topic, handlers.event_changed, module=MODULE)
    for topic in (MEMBER_JOINED, MEMBER_ROLE_CHANGED, MEMBER_DEACTIVATED, MEMBER_REACTIVATED):
        bus.subscribe(topic, handlers.member_changed, module=MODULE)
    bus.subscribe(ORGANIZATION_CREATED, handlers.organization_created, module=MODULE)

    async def list_audit(cmd: ListAudit, context: Context) -> AuditPage:
        assert context.tx is not None, "audit commands run inside the transaction middleware"
        return await handlers.list_audit(cmd, AuditUnitOfWork(context.tx), context.principal)

    bus.handle(LIST_AUDIT, list_audit)
    return Running()


__all__ = ["Running", "register"]
