"""Auth handlers: plain async functions over a unit of work. They never commit."""

from __future__ import annotations

import msgspec

from app.clock import to_wire
from app.errors import FieldError, Invalid
from app.identity import Principal, Role
from app.modules.auth.contracts import (
    BCRYPT_MAX_BYTES,
    EmailTaken,
    GetMe,
    InvalidCredentials,
    LogIn,
    LoginView,
    MeView,
    OrganizationExists,
    OrganizationNotFound,
    OrganizationView,
    SignUp,
    SignUpView,
    UserGone,
    UserView,
)
from app.modules.auth.model import Organization, User, slugify
from app.modules.auth.passwords import PasswordHasher
from app.modules.auth.repository import DuplicateRow
from app.modules.auth.tokens import TokenIssuer
from app.modules.auth.uow import AuthUnitOfWork


async def sign_up(
    cmd: SignUp, uow: AuthUnitOfWork, passwords: PasswordHasher, tokens: TokenIssuer
) -> SignUpView:
    _check_sign_up(cmd)
    # Hash before the first statement: the write transaction (and SQLite's write lock) starts there.
    password_hash = await passwords.hash(cmd.password)
    email = cmd.email.lower()
    if await uow.users.by_email(email) is not None:
        raise EmailTaken()

    if cmd.organization_id is not None:
        organization = await uow.organizations.get(cmd.organization_id)
        if organization is None:
            raise OrganizationNotFound()
        role = Role.USER
    else:
        assert cmd.organization_name is not None  # _check_sign_up: exactly one of the two
        name = cmd.organization_name
        slug = slugify(name)
        if await uow.organizations.slug_exists(slug):
            raise OrganizationExists()
        organization = Organization(name=name, slug=slug)
        try:
            await uow.organizations.add(organization)
        except DuplicateRow:
            raise OrganizationExists() from None
        role = Role.ADMIN

    user = User(
        email=email,
        password_hash=password_hash,
        first_name=cmd.first_name,
        last_name=cmd.last_name,
        role=role,
        organization_id=organization.id,
    )
    try:
        await uow.users.add(user)
    except DuplicateRow:
        raise EmailTaken() from None
    return SignUpView(user=user_view(user), access_token=tokens.issue(user))


async def log_in(
    cmd: LogIn, uow: AuthUnitOfWork, passwords: PasswordHasher, tokens: TokenIssuer
) -> LoginView:
    if len(cmd.password.encode()) > BCRYPT_MAX_BYTES:
        raise InvalidCredentials()  # no account has such a password; a sign-up refuses it
    user = await uow.users.by_email(cmd.email.lower())
    matches = await passwords.verify(cmd.password, user.password_hash if user else None)
    if user is None or not matches:
        raise InvalidCredentials()
    return LoginView(
        user=user_view(user), access_token=tokens.issue(user), expires_in=tokens.expires_in
    )


async def get_me(cmd: GetMe, uow: AuthUnitOfWork, principal: Principal) -> MeView:
    user = await uow.users.get(principal.user_id)
    if user is None or user.organization_id != principal.organization_id:
        raise UserGone()
    organization = await uow.organizations.get(user.organization_id)
    if organization is None:
        raise UserGone()
    return MeView(
        **msgspec.structs.asdict(user_view(user)),
        updated_at=to_wire(user.updated_at),
        organization=OrganizationView(
            id=organization.id, name=organization.name, slug=organization.slug
        ),
    )


def user_view(user: User) -> UserView:
    return UserView(
        id=user.id,
        email=user.email,
        first_name=user.first_name,
        last_name=user.last_name,
        role=user.role_enum,
        organization_id=user.organization_id,
        created_at=to_wire(user.created_at),
    )


def _check_sign_up(cmd: SignUp) -> None:
    if (cmd.organization_id is None) == (cmd.organization_name is None):
        raise Invalid.fields(
            [
                FieldError(
                    field="organizationId",
                    message="Provide exactly one of organizationId (join) "
                    "or organizationName (create)",
                )
            ]
        )
    if len(cmd.password.encode()) > BCRYPT_MAX_BYTES:
        raise Invalid.fields(
            [
                FieldError(
                    field="password",
                    message=f"password must be at most {BCRYPT_MAX_BYTES} bytes when UTF-8 encoded",
                )
            ]
        )
