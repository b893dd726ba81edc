"""Demo events (API.md, "Seed data"), with fixed ids, inserted with ON CONFLICT DO NOTHING.

Organizations and users are the auth module's; this module knows them by id only.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import utcnow
from app.modules.events.model import EVENTS as TABLE
from app.storage.schema import insert_ignoring_conflicts

ACME_ID = "10000000-0000-0000-0000-000000000001"
TECH_ID = "10000000-0000-0000-0000-000000000002"
ACME_ADMIN_ID = "20000000-0000-0000-0000-000000000001"
ACME_USER_ID = "20000000-0000-0000-0000-000000000003"
TECH_USER_ID = "20000000-0000-0000-0000-000000000004"


def _at(year: int, month: int, day: int, hour: int) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


EVENTS = (
    {
        "id": "00000000-0000-0000-0000-000000000001",
        "title": "Annual Tech Conference 2026",
        "description": "Our yearly conference on the technology shaping the next decade.",
        "location": "San Francisco, CA",
        "start_date": _at(2026, 6, 15, 9),
        "end_date": _at(2026, 6, 17, 18),
        "status": "APPROVED",
        "organization_id": ACME_ID,
        "created_by_id": ACME_ADMIN_ID,
    },
    {
        "id": "00000000-0000-0000-0000-000000000002",
        "title": "Team Building Workshop",
        "description": "A day of team activities and collaboration exercises.",
        "location": "Office",
        "start_date": _at(2026, 3, 20, 10),
        "end_date": _at(2026, 3, 20, 16),
        "status": "SUBMITTED",
        "organization_id": ACME_ID,
        "created_by_id": ACME_USER_ID,
    },
    {
        "id": "00000000-0000-0000-0000-000000000003",
        "title": "Innovation Summit",
        "description": "Ideas, demos and discussions on what comes next.",
        "location": "Virtual",
        "start_date": _at(2026, 4, 10, 14),
        "end_date": _at(2026, 4, 10, 17),
        "status": "DRAFT",
        "organization_id": TECH_ID,
        "created_by_id": TECH_USER_ID,
    },
)


async def seed(session: AsyncSession) -> None:
    now = utcnow()
    await session.execute(
        insert_ignoring_conflicts(TABLE, session.get_bind().dialect.name),
        [
            {**event, "rejection_reason": None, "created_at": now, "updated_at": now}
            for event in EVENTS
        ],
    )
