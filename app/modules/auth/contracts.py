"""The auth module's wire surface: commands, views, token claims, error codes."""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from app.bus.contracts import (
    SPACE,
    Action,
    Change,
    Command,
    Conditional,
    Contract,
    PageMeta,
    PageNumber,
    PageSize,
    SortDirection,
    Timestamp,
    Topic,
    Uuid,
    checked,
    text,
)
from app.errors import Conflict, Forbidden, NotFound, Unauthorized
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


class GetOrganization(Contract, frozen=True, kw_only=True):
    pass


MemberSortField = Literal["createdAt", "email", "lastName", "role"]
UserId = Annotated[str, text("userId", "1-64 characters long", min_length=1, max_length=64)]
RoleName = Annotated[Role, Meta(extra={"message": "role must be one of USER, MODERATOR, ADMIN"})]
MemberSearch = Annotated[str, text("search", "1-200 characters long", min_length=1, max_length=200)]


class ListMembers(Contract, frozen=True, kw_only=True):
    """GET /organization/members query: filters, sort and page."""

    page: PageNumber = 1
    limit: PageSize = 10
    sort_by: Annotated[
        MemberSortField,
        Meta(extra={"message": "sortBy must be one of createdAt, email, lastName, role"}),
    ] = "createdAt"
    sort_order: SortDirection = "asc"
    role: RoleName | None = None
    active: Annotated[bool, Meta(extra={"message": "active must be true or false"})] | None = None
    search: MemberSearch | None = None


class FindMember(Contract, frozen=True, kw_only=True):
    user_id: UserId


class RoleChange(Contract, frozen=True, kw_only=True):
    """The body of PATCH /organization/members/{userId}."""

    role: RoleName


class ChangeRole(Conditional, frozen=True, kw_only=True):
    user_id: UserId
    role: Role


class DeactivateMember(Conditional, frozen=True, kw_only=True):
    user_id: UserId


class ReactivateMember(Conditional, frozen=True, kw_only=True):
    user_id: UserId


class CreateOrganization(Contract, frozen=True, kw_only=True):
    """The operator creates an organization (with no member yet)."""

    name: OrganizationName


class CreateMember(Contract, frozen=True, kw_only=True):
    """The operator adds a member to an organization, with a role."""

    email: Email
    password: Password
    first_name: FirstName
    last_name: LastName
    organization_slug: Annotated[
        str, text("organization", "1-120 characters", min_length=1, max_length=120)
    ]
    role: RoleName


class FindMemberByEmail(Contract, frozen=True, kw_only=True):
    """The operator looks a member up by email (to act on them)."""

    email: LoginEmail


class GetMemberState(Contract, frozen=True, kw_only=True):
    """The edge asks for the caller's current role and whether they are still active."""


# Commands, as the gateway sends them and the module registers them

SIGN_UP = Command("auth.signup", SignUp)
LOG_IN = Command("auth.login", LogIn, read=True, retry_after_timeout=False)
"""A login changes nothing, but is never sent again after a timeout: it is CPU-heavy, and
retrying it under overload is how overload grows."""
GET_ME = Command("auth.getMe", GetMe, read=True)
GET_ORGANIZATION = Command("auth.getOrganization", GetOrganization, read=True)
LIST_MEMBERS = Command("auth.findMembers", ListMembers, read=True)
FIND_MEMBER = Command("auth.findMember", FindMember, read=True)
CHANGE_ROLE = Command("auth.changeRole", ChangeRole)
DEACTIVATE_MEMBER = Command("auth.deactivateMember", DeactivateMember)
REACTIVATE_MEMBER = Command("auth.reactivateMember", ReactivateMember)
GET_MEMBER_STATE = Command("auth.memberState", GetMemberState, read=True)
CREATE_ORGANIZATION = Command("auth.createOrganization", CreateOrganization)
CREATE_MEMBER = Command("auth.createMember", CreateMember)
FIND_MEMBER_BY_EMAIL = Command("auth.findMemberByEmail", FindMemberByEmail, read=True)


# Notifications: what happened to an organization and its members


class OrganizationCreated(Contract, frozen=True, kw_only=True):
    organization_id: str
    name: str
    slug: str


class MemberNotification(Contract, frozen=True, kw_only=True):
    """A member's change: who, in which organization, and what changed (`{field: {from, to}}`)."""

    member_id: str
    organization_id: str
    changes: dict[str, Change] | None = None


class MemberJoined(MemberNotification, frozen=True, kw_only=True):
    role: Role


class MemberRoleChanged(MemberNotification, frozen=True, kw_only=True):
    pass


class MemberDeactivated(MemberNotification, frozen=True, kw_only=True):
    pass


class MemberReactivated(MemberNotification, frozen=True, kw_only=True):
    pass


ORGANIZATION_CREATED = Topic("auth.organizationCreated", OrganizationCreated)
MEMBER_JOINED = Topic("auth.memberJoined", MemberJoined)
MEMBER_ROLE_CHANGED = Topic("auth.memberRoleChanged", MemberRoleChanged)
MEMBER_DEACTIVATED = Topic("auth.memberDeactivated", MemberDeactivated)
MEMBER_REACTIVATED = Topic("auth.memberReactivated", MemberReactivated)
TOPICS = (
    ORGANIZATION_CREATED,
    MEMBER_JOINED,
    MEMBER_ROLE_CHANGED,
    MEMBER_DEACTIVATED,
    MEMBER_REACTIVATED,
)
ACTIONS: dict[str, Action] = {
    ORGANIZATION_CREATED.name: "organization.created",
    MEMBER_JOINED.name: "member.joined",
    MEMBER_ROLE_CHANGED.name: "member.role_changed",
    MEMBER_DEACTIVATED.name: "member.deactivated",
    MEMBER_REACTIVATED.name: "member.reactivated",
}
"""The audit action of each notification."""
"""The operator's commands (the `eventboard` CLI): refused to anyone else."""


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


class OrganizationDetails(Contract, frozen=True, kw_only=True):
    id: Uuid
    name: str
    slug: str
    created_at: Timestamp
    member_count: int


class MemberView(Contract, frozen=True, kw_only=True):
    id: Uuid
    email: str
    first_name: str
    last_name: str
    role: Role
    organization_id: Uuid
    created_at: Timestamp
    active: bool
    updated_at: Timestamp
    version: Annotated[int, Meta(description="The member's version: the ETag, quoted")]


class MemberPage(Contract, frozen=True, kw_only=True):
    data: list[MemberView]
    meta: PageMeta


class MemberState(Contract, frozen=True, kw_only=True):
    role: Role
    active: bool


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


def key_id(secret: str) -> str:
    """A signing key's public name, the tokens' `kid` header: 16 hex digits of a hash of the
    secret (a secret of 32 bytes or more cannot be worked back from it)."""
    return hashlib.sha256(b"eventboard-jwt-kid:" + secret.encode()).hexdigest()[:16]


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


class MemberNotFound(NotFound):
    default_code = "MEMBER_NOT_FOUND"
    default_message = "Member not found"


class NotAdmin(Forbidden):
    default_code = "INSUFFICIENT_ROLE"
    default_message = "Only an ADMIN may change members"


class NotModerator(Forbidden):
    default_code = "INSUFFICIENT_ROLE"
    default_message = "Only a MODERATOR or an ADMIN may list members"


class LastAdmin(Conflict):
    default_code = "LAST_ADMIN"
    default_message = "The organization's last active ADMIN cannot be demoted or deactivated"


class MemberInactive(Conflict):
    default_code = "MEMBER_INACTIVE"
    default_message = "The member is already inactive"


class MemberActive(Conflict):
    default_code = "MEMBER_ACTIVE"
    default_message = "The member is already active"


class NotOperator(Forbidden):
    default_code = "OPERATOR_ONLY"
    default_message = "Only the operator may do this"


class DeactivatedToken(Unauthorized):
    default_code = "MEMBER_DEACTIVATED"
    default_message = "Invalid token"
