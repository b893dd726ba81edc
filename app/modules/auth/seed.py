"""Demo data (API.md, "Seed data"): two organizations and four users, all with `Password123!`.

Fixed ids, inserted with ON CONFLICT DO NOTHING: restarting, or several processes starting at
once, never duplicates a row. Passwords are hashed only for users not yet present.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import utcnow
from app.modules.auth.model import ORGANIZATIONS as ORGANIZATION_TABLE
from app.modules.auth.model import USERS as USER_TABLE
from app.modules.auth.passwords import PasswordHasher
from app.storage.schema import insert_ignoring_conflicts

DEMO_PASSWORD = "Password123!"

ACME_ID = "10000000-0000-0000-0000-000000000001"
TECH_ID = "10000000-0000-0000-0000-000000000002"

ORGANIZATIONS = (
    {"id": ACME_ID, "name": "Acme Corporation", "slug": "acme-corp"},
    {"id": TECH_ID, "name": "Tech Innovators", "slug": "tech-innovators"},
)


def _user(number: int, email: str, first: str, last: str, role: str, org: str) -> dict[str, str]:
    return {
        "id": f"20000000-0000-0000-0000-{number:012d}",
        "email": email,
        "first_name": first,
        "last_name": last,
        "role": role,
        "organization_id": org,
    }


USERS = (
    _user(1, "admin@acme.com", "Admin", "User", "ADMIN", ACME_ID),
    _user(2, "moderator@acme.com", "Moderator", "User", "MODERATOR", ACME_ID),
    _user(3, "user@acme.com", "Regular", "User", "USER", ACME_ID),
    _user(4, "user@techinnovators.com", "Tech", "User", "USER", TECH_ID),
)


async def seed(session: AsyncSession, passwords: PasswordHasher) -> None:
    present = set(
        await session.scalars(
            select(USER_TABLE.c.id).where(USER_TABLE.c.id.in_([u["id"] for u in USERS]))
        )
    )
    missing = [user for user in USERS if user["id"] not in present]
    if not missing:
        return
    dialect = session.get_bind().dialect.name
    now = utcnow()
    await session.execute(
        insert_ignoring_conflicts(ORGANIZATION_TABLE, dialect),
        [{**org, "created_at": now, "updated_at": now} for org in ORGANIZATIONS],
    )
    password_hash = await passwords.hash(DEMO_PASSWORD)
    await session.execute(
        insert_ignoring_conflicts(USER_TABLE, dialect),
        [
            {**user, "password_hash": password_hash, "created_at": now, "updated_at": now}
            for user in missing
        ],
    )
