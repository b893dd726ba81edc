"""Who is calling: the authenticated caller, as the edge establishes it and every command
carries it (a fact about the request, not about the bus that carries it)."""

from __future__ import annotations

from enum import StrEnum

import msgspec


class Role(StrEnum):
    USER = "USER"
    MODERATOR = "MODERATOR"
    ADMIN = "ADMIN"


OPERATOR = "operator"
"""The user id of the operator's principal (`eventboard` CLI): never a member's (theirs are
UUIDs), never in a token (the edge refuses one that says so)."""


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """The authenticated caller, established at the edge and carried with every command."""

    user_id: str
    organization_id: str
    role: Role
    email: str

    @property
    def is_operator(self) -> bool:
        """The operator at the command line, acting as an organization's ADMIN."""
        return self.user_id == OPERATOR

    @classmethod
    def operator(cls, organization_id: str) -> Principal:
        return cls(user_id=OPERATOR, organization_id=organization_id, role=Role.ADMIN, email="-")
