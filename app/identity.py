"""Who is calling: the authenticated caller, as the edge establishes it and every command
carries it (a fact about the request, not about the bus that carries it)."""

from __future__ import annotations

from enum import StrEnum

import msgspec


class Role(StrEnum):
    USER = "USER"
    MODERATOR = "MODERATOR"
    ADMIN = "ADMIN"


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """The authenticated caller, established at the edge and carried with every command."""

    user_id: str
    organization_id: str
    role: Role
    email: str
