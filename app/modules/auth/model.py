"""Auth tables, organizations and their users, and the plain objects their rows become."""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Boolean, Column, ForeignKey, Index, Integer, String, Table, true

from app.bus.outbox import outbox_table
from app.clock import utcnow
from app.identity import Role
from app.modules.auth.contracts import LastAdmin, MemberActive, MemberInactive
from app.storage.schema import Base, UTCDateTime


def new_id() -> str:
    return str(uuid.uuid4())


def slugify(name: str) -> str:
    """`Acme Corporation` -> `acme-corporation`; accents folded, anything else a single dash. A
    name with no Latin letter or digit (`株式会社`, `***`) gets `org-` and a hash of the name
    folded for case, so the same name always has the same slug."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    if slug:
        return slug
    return "org-" + hashlib.sha256(name.casefold().encode()).hexdigest()[:16]


ORGANIZATIONS = Table(
    "auth_organizations",
    Base.metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("slug", String(120), nullable=False, unique=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

USERS = Table(
    "auth_users",
    Base.metadata,
    Column("id", String(36), primary_key=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("password_hash", String(100), nullable=False),
    Column("first_name", String(50), nullable=False),
    Column("last_name", String(50), nullable=False),
    Column("role", String(16), nullable=False),
    Column(
        "organization_id",
        String(36),
        ForeignKey("auth_organizations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("active", Boolean(), server_default=true(), nullable=False),
    Column("version", Integer(), server_default="1", nullable=False),
    Index("ix_auth_users_organization_id", "organization_id"),
)

OUTBOX = outbox_table("auth")
"""The notifications the module emitted (`app.bus.outbox`)."""


@dataclass(slots=True, eq=False, kw_only=True)
class Organization:
    """One row of `auth_organizations` (fields in column order)."""

    id: str = field(default_factory=new_id)
    name: str
    slug: str
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass(slots=True, eq=False, kw_only=True)
class User:
    """One row of `auth_users` (fields in column order)."""

    id: str = field(default_factory=new_id)
    email: str
    password_hash: str
    first_name: str
    last_name: str
    role: str
    organization_id: str
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    active: bool = True
    version: int = 1
    """Bumped by every change of the member: their ETag."""

    def __post_init__(self) -> None:
        self.active = bool(self.active)  # SQLite's driver gives 0 or 1

    @property
    def role_enum(self) -> Role:
        return Role(self.role)

    def change_role(self, role: Role, *, active_admins: int) -> None:
        """`active_admins`: the organization's active ADMINs, this member included."""
        if self.role == role:
            return
        if self.role == Role.ADMIN and self.active and active_admins <= 1:
            raise LastAdmin()
        self.role = role
        self._changed()

    def deactivate(self, *, active_admins: int) -> None:
        if not self.active:
            raise MemberInactive()
        if self.role == Role.ADMIN and active_admins <= 1:
            raise LastAdmin()
        self.active = False
        self._changed()

    def reactivate(self) -> None:
        if self.active:
            raise MemberActive()
        self.active = True
        self._changed()

    def _changed(self) -> None:
        self.version += 1
        self.updated_at = utcnow()
