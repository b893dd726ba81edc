"""The auth module's wire surface: commands, views, token claims, error codes."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from app.bus.envelope import Role
from app.errors import Conflict, NotFound, Unauthorized

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
# At least one lower-case letter, one upper-case letter, and one digit or symbol.
PASSWORD_PATTERN = r"^(?=.*[a-z])(?=.*[A-Z])(?=.*[^A-Za-z])"
BCRYPT_MAX_BYTES = 72

Email = Annotated[
    str,
    Meta(
        max_length=254,
        pattern=EMAIL_PATTERN,
        extra={"message": "email must be a valid email address"},
        examples=["user@acme.com"],
    ),
]
Password = Annotated[
    str,
    Meta(
        min_length=8,
        max_length=100,
        pattern=PASSWORD_PATTERN,
        extra={
            "message": "password must be 8-100 characters long and contain an uppercase letter, "
            "a lowercase letter and a digit or symbol"
        },
    ),
]
FirstName = Annotated[
    str,
    Meta(min_length=2, max_length=50, extra={"message": "firstName must be 2-50 characters long"}),
]
LastName = Annotated[
    str,
    Meta(min_length=2, max_length=50, extra={"message": "lastName must be 2-50 characters long"}),
]
OrganizationId = Annotated[
    str,
    Meta(min_length=1, max_length=64, extra={"message": "organizationId must be 1-64 characters"}),
]
OrganizationName = Annotated[
    str,
    Meta(
        min_length=2,
        max_length=100,
        extra={"message": "organizationName must be 2-100 characters long"},
    ),
]
LoginEmail = Annotated[
    str, Meta(min_length=1, max_length=254, extra={"message": "email is required"})
]
LoginPassword = Annotated[
    str, Meta(min_length=1, max_length=100, extra={"message": "password must be 1-100 characters"})
]
Timestamp = Annotated[str, Meta(extra_json_schema={"format": "date-time"})]


class _Contract(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, rename="camel"
):
    pass


# Commands


class SignUp(_Contract, frozen=True, kw_only=True):
    """Join an organization (`organizationId`) as USER or found one (`organizationName`)."""

    email: Email
    password: Password
    first_name: FirstName
    last_name: LastName
    organization_id: OrganizationId | None = None
    organization_name: OrganizationName | None = None


class LogIn(_Contract, frozen=True, kw_only=True):
    email: LoginEmail
    password: LoginPassword


class GetMe(_Contract, frozen=True, kw_only=True):
    pass


# Views


class OrganizationView(_Contract, frozen=True, kw_only=True):
    id: str
    name: str
    slug: str


class UserView(_Contract, frozen=True, kw_only=True):
    id: str
    email: str
    first_name: str
    last_name: str
    role: Role
    organization_id: str
    created_at: Timestamp


class MeView(_Contract, frozen=True, kw_only=True):
    id: str
    email: str
    first_name: str
    last_name: str
    role: Role
    organization_id: str
    created_at: Timestamp
    updated_at: Timestamp
    organization: OrganizationView


class SignUpView(_Contract, frozen=True, kw_only=True):
    user: UserView
    access_token: str


class LoginView(_Contract, frozen=True, kw_only=True):
    user: UserView
    access_token: str
    expires_in: int
    """Seconds until the access token expires."""
    token_type: str = "Bearer"


class TokenClaims(
    msgspec.Struct, frozen=True, kw_only=True, rename={"organization_id": "organizationId"}
):
    """The access token's claims (HS256). Issued by this module, verified at the edge."""

    sub: str
    email: str
    role: Role
    organization_id: str
    iat: int
    exp: int
    jti: str


# Errors


class InvalidCredentials(Unauthorized):
    default_code = "INVALID_CREDENTIALS"
    default_message = "Invalid credentials"


class UserGone(Unauthorized):
    default_code = "USER_NOT_FOUND"
    default_message = "User no longer exists"


class EmailTaken(Conflict):
    default_code = "EMAIL_TAKEN"
    default_message = "User with this email already exists"


class OrganizationNotFound(NotFound):
    default_code = "ORGANIZATION_NOT_FOUND"
    default_message = "Organization not found"


class OrganizationExists(Conflict):
    default_code = "ORGANIZATION_EXISTS"
    default_message = "Organization with this name already exists"
