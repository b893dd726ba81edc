"""The auth module's wire surface: commands, views, token claims, error codes."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from app.bus.contracts import SPACE, Command, Contract, Timestamp, Uuid, checked, text
from app.errors import Conflict, NotFound, Unauthorized
from app.identity import Role

_NOT_IN_EMAIL = rf"[^@{SPACE}\x00]+"
EMAIL_PATTERN = rf"^{_NOT_IN_EMAIL}@{_NOT_IN_EMAIL}\.{_NOT_IN_EMAIL}$"
# At least one lower-case letter, one upper-case letter, and one digit or symbol.
PASSWORD_PATTERN = r"^(?=.*[a-z])(?=.*[A-Z])(?=.*[^A-Za-z])"
BCRYPT_MAX_BYTES = 72

Email = Annotated[
    str,
    checked(
        "email",
        "a valid email address",
        pattern=EMAIL_PATTERN,
        max_length=254,
        example="new.person@acme.com",
    ),
]
Password = Annotated[
    str,
    checked(
        "password",
        f"8-{BCRYPT_MAX_BYTES} characters ({BCRYPT_MAX_BYTES} bytes of UTF-8) long and contain "
        "an uppercase letter, a lowercase letter and a digit or symbol",
        pattern=PASSWORD_PATTERN,
        min_length=8,
        max_length=BCRYPT_MAX_BYTES,
        example="Secret123!",
    ),
    Meta(
        description=f"8-{BCRYPT_MAX_BYTES} bytes of UTF-8 (bcrypt reads no further): an ASCII "
        f"password may have {BCRYPT_MAX_BYTES} characters, one of 3-byte characters 24",
    ),
]
FirstName = Annotated[
    str, text("firstName", "2-50 characters long", min_length=2, max_length=50, example="Ada")
]
LastName = Annotated[
    str, text("lastName", "2-50 characters long", min_length=2, max_length=50, example="Lovelace")
]
OrganizationId = Annotated[
    str, text("organizationId", "1-64 characters long", min_length=1, max_length=64)
]
OrganizationName = Annotated[
    str,
    text(
        "organizationName",
        "2-100 characters long",
        min_length=2,
        max_length=100,
        example="Analytical Engines",
    ),
]
LoginEmail = Annotated[str, text("email", "1-254 characters long", min_length=1, max_length=254)]
LoginPassword = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=BCRYPT_MAX_BYTES,
        extra={"message": f"password must be 1-{BCRYPT_MAX_BYTES} characters long"},
    ),
]


# Commands


class SignUp(Contract, frozen=True, kw_only=True):
    """Join an organization (`organizationId`) as USER or found one (`organizationName`)."""

    email: Email
    password: Password
    first_name: FirstName
    last_name: LastName
    organization_id: OrganizationId | None = None
    organization_name: OrganizationName | None = None


class LogIn(Contract, frozen=True, kw_only=True):
    email: LoginEmail
    password: LoginPassword


class GetMe(Contract, frozen=True, kw_only=True):
    pass


# Commands, as the gateway sends them and the module registers them

SIGN_UP = Command("auth.signup", SignUp)
LOG_IN = Command("auth.login", LogIn, read=True, retry_after_timeout=False)
"""A login changes nothing, but is never sent again after a timeout: it is CPU-heavy, and
retrying it under overload is how overload grows."""
GET_ME = Command("auth.getMe", GetMe, read=True)


# Views


class OrganizationView(Contract, frozen=True, kw_only=True):
    id: Uuid
    name: str
    slug: str


class UserView(Contract, frozen=True, kw_only=True):
    id: Uuid
    email: str
    first_name: str
    last_name: str
    role: Role
    organization_id: Uuid
    created_at: Timestamp


class MeView(Contract, frozen=True, kw_only=True):
    id: Uuid
    email: str
    first_name: str
    last_name: str
    role: Role
    organization_id: Uuid
    created_at: Timestamp
    updated_at: Timestamp
    organization: OrganizationView


class SignUpView(Contract, frozen=True, kw_only=True):
    user: UserView
    access_token: str


class LoginView(Contract, frozen=True, kw_only=True):
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
