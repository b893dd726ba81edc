"""The audit module's wire surface: the audit log's query, its page, and its errors. Its entries
are the shared `Entry`; what feeds it are the events and auth modules' notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import Meta

from app.bus.contracts import (
    Action,
    Command,
    Contract,
    Entry,
    PageMeta,
    PageNumber,
    PageSize,
    moment,
)
from app.errors import Forbidden

_At = Annotated[datetime, moment("2026-06-15T09:00:00.000Z")]


ActorId = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=80,
        extra={"message": "actorId must be 1-80 characters long"},
        examples=["20000000-0000-0000-0000-000000000001"],
    ),
]
SubjectId = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=36,
        extra={"message": "subjectId must be 1-36 characters long"},
        examples=["00000000-0000-0000-0000-000000000002"],
    ),
]


class ListAudit(Contract, frozen=True, kw_only=True):
    """GET /organization/audit: newest first; filters combine (AND); `from`/`to` are inclusive
    bounds on the entry's `at`."""

    page: PageNumber = 1
    limit: PageSize = 10
    action: (
        Annotated[Action, Meta(extra={"message": "action must be one of the audit actions"})] | None
    ) = None
    actor_id: ActorId | None = None
    subject_id: SubjectId | None = None
    from_: _At | None = msgspec.field(default=None, name="from")
    to: _At | None = None


class AuditPage(Contract, frozen=True, kw_only=True):
    data: list[Entry]
    meta: PageMeta


LIST_AUDIT = Command("audit.list", ListAudit, read=True)


class NotAdmin(Forbidden):
    default_code = "INSUFFICIENT_ROLE"
    default_message = "Only an ADMIN may read the audit log"
