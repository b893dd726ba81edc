"""The audit module's handlers: subscribers that turn the events and auth modules' notifications
into entries, and the one command that reads them."""

from __future__ import annotations

import msgspec

from app.bus.contracts import Action, Change, Entry, PageMeta
from app.bus.subscribers import Delivery
from app.clock import utcnow
from app.identity import Principal, Role
from app.modules.audit.contracts import AuditPage, ListAudit, NotAdmin
from app.modules.audit.repository import COLUMNS
from app.modules.audit.uow import AuditUnitOfWork
from app.modules.auth.contracts import ACTIONS as AUTH_ACTIONS
from app.modules.auth.contracts import MemberJoined, MemberNotification, OrganizationCreated
from app.modules.events.contracts import ACTIONS as EVENT_ACTIONS
from app.modules.events.contracts import EventNotification


async def event_changed(notification: EventNotification, delivery: Delivery) -> None:
    await _enter(
        delivery,
        organization_id=notification.organization_id,
        action=EVENT_ACTIONS[delivery.notification.pattern],
        subject_type="event",
        subject_id=notification.event_id,
        from_status=notification.from_status,
        to_status=notification.to_status,
        changes=notification.changes,
        reason=notification.reason,
    )


async def member_changed(notification: MemberNotification, delivery: Delivery) -> None:
    changes = notification.changes
    if isinstance(notification, MemberJoined):
        changes = {"role": Change(from_=None, to=notification.role)}
    await _enter(
        delivery,
        organization_id=notification.organization_id,
        action=AUTH_ACTIONS[delivery.notification.pattern],
        subject_type="member",
        subject_id=notification.member_id,
        changes=changes,
    )


async def organization_created(notification: OrganizationCreated, delivery: Delivery) -> None:
    await _enter(
        delivery,
        organization_id=notification.organization_id,
        action=AUTH_ACTIONS[delivery.notification.pattern],
        subject_type="organization",
        subject_id=notification.organization_id,
        changes={"name": Change(from_=None, to=notification.name)},
    )


async def _enter(
    delivery: Delivery,
    *,
    organization_id: str,
    action: Action,
    subject_type: str,
    subject_id: str,
    from_status: str | None = None,
    to_status: str | None = None,
    changes: dict[str, Change] | None = None,
    reason: str | None = None,
) -> None:
    """The entry for one notification: its id, actor, time and correlation id are the
    notification's."""
    note = delivery.notification
    actor: Principal | None = note.actor
    await AuditUnitOfWork(delivery.tx).entries.add(
        {
            "id": note.id,
            "organization_id": organization_id,
            "action": action,
            "subject_type": subject_type,
            "subject_id": subject_id,
            "actor_id": actor.user_id if actor else "system",
            "actor_role": actor.role if actor else None,
            "from_status": from_status,
            "to_status": to_status,
            "changes": None if changes is None else msgspec.json.encode(changes).decode(),
            "reason": reason,
            "correlation_id": note.correlation_id,
            "at": delivery.occurred_at,
            "recorded_at": utcnow(),
        }
    )


async def list_audit(cmd: ListAudit, uow: AuditUnitOfWork, principal: Principal) -> AuditPage:
    if principal.role != Role.ADMIN:
        raise NotAdmin()
    rows, total = await uow.entries.page(cmd, principal.organization_id)
    return AuditPage(
        data=[Entry.of(dict(zip(COLUMNS, row, strict=True))) for row in rows],
        meta=PageMeta.of(cmd.page, cmd.limit, total),
    )
