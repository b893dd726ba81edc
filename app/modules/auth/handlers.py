"""Auth handlers: plain async functions over a unit of work. They never commit."""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from app.bus.contracts import Change, PageMeta, Topic
from app.clock import to_wire
from app.errors import FieldError, Invalid
from app.identity import Principal, Role
from app.modules.auth.contracts import (
    BCRYPT_MAX_BYTES,
    MEMBER_DEACTIVATED,
    MEMBER_JOINED,
    MEMBER_REACTIVATED,
    MEMBER_ROLE_CHANGED,
    ORGANIZATION_CREATED,
    ChangeRole,
    CreateMember,
    CreateOrganization,
    DeactivateMember,
    EmailTaken,
    FindMember,
    FindMemberByEmail,
    GetMe,
    GetMemberState,
    GetOrganization,
    InvalidCredentials,
    ListMembers,
    LogIn,
    LoginView,
    MemberJoined,
    MemberNotFound,
    MemberPage,
    MemberState,
    MemberView,
    MeView,
    NotAdmin,
    NotModerator,
    NotOperator,
    OrganizationCreated,
    OrganizationDetails,
    OrganizationExists,
    OrganizationNotFound,
    OrganizationView,
    ReactivateMember,
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
    created = role == Role.ADMIN

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
    newcomer = Principal(
        user_id=user.id, organization_id=organization.id, role=role, email=user.email
    )
    if created:
        await _organization_created(uow, organization, actor=newcomer)
    await _joined(uow, user, actor=newcomer)
    return SignUpView(user=user_view(user), access_token=tokens.issue(user))


async def log_in(
    cmd: LogIn, uow: AuthUnitOfWork, passwords: PasswordHasher, tokens: TokenIssuer
) -> LoginView:
    if len(cmd.password.encode()) > BCRYPT_MAX_BYTES:
        raise InvalidCredentials()  # no account has such a password; a sign-up refuses it
    user = await uow.users.by_email(cmd.email.lower())
    matches = await passwords.verify(cmd.password, user.password_hash if user else None)
    if user is None or not matches or not user.active:
        raise InvalidCredentials()  # a deactivated member is told no more than a stranger
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


async def get_organization(
    cmd: GetOrganization, uow: AuthUnitOfWork, principal: Principal
) -> OrganizationDetails:
    organization = await uow.organizations.get(principal.organization_id)
    if organization is None:
        raise UserGone()
    return OrganizationDetails(
        id=organization.id,
        name=organization.name,
        slug=organization.slug,
        created_at=to_wire(organization.created_at),
        member_count=await uow.organizations.member_count(organization.id),
    )


async def list_members(cmd: ListMembers, uow: AuthUnitOfWork, principal: Principal) -> MemberPage:
    if principal.role == Role.USER:
        raise NotModerator()
    members, total = await uow.users.page(cmd, principal.organization_id)
    return MemberPage(
        data=[member_view(member) for member in members],
        meta=PageMeta.of(cmd.page, cmd.limit, total),
    )


async def find_member(cmd: FindMember, uow: AuthUnitOfWork, principal: Principal) -> MemberView:
    member = await uow.users.member(cmd.user_id, principal.organization_id)
    if member is None:
        raise MemberNotFound()
    if principal.role == Role.USER and member.id != principal.user_id:
        raise NotModerator()
    return member_view(member)


async def change_role(cmd: ChangeRole, uow: AuthUnitOfWork, principal: Principal) -> MemberView:
    return await _change_member(
        cmd,
        uow,
        principal,
        lambda member, admins: member.change_role(cmd.role, active_admins=admins),
        MEMBER_ROLE_CHANGED,
    )


async def deactivate_member(
    cmd: DeactivateMember, uow: AuthUnitOfWork, principal: Principal
) -> MemberView:
    return await _change_member(
        cmd,
        uow,
        principal,
        lambda member, admins: member.deactivate(active_admins=admins),
        MEMBER_DEACTIVATED,
    )


async def reactivate_member(
    cmd: ReactivateMember, uow: AuthUnitOfWork, principal: Principal
) -> MemberView:
    return await _change_member(
        cmd, uow, principal, lambda member, _: member.reactivate(), MEMBER_REACTIVATED
    )


async def _change_member(
    cmd: ChangeRole | DeactivateMember | ReactivateMember,
    uow: AuthUnitOfWork,
    principal: Principal,
    change: Callable[[User, int], None],
    topic: Topic,
) -> MemberView:
    """Load the member (the organization locked), apply `change(member, active_admins)` by the
    model's rules, check the caller may, write it back, and emit what changed."""
    member, caller = await _member_to_change(cmd, uow, principal)
    before: dict[str, str | bool] = {"role": member.role, "active": member.active}
    version = member.version
    change(member, await uow.users.active_admins(member.organization_id))
    _still_admin(caller, principal)
    await uow.users.save_member(member)
    if member.version != version:
        after: dict[str, str | bool] = {"role": member.role, "active": member.active}
        changes = {
            name: Change(from_=before[name], to=after[name])
            for name in before
            if before[name] != after[name]
        }
        await uow.emit(
            topic,
            topic.payload(
                member_id=member.id, organization_id=member.organization_id, changes=changes
            ),
        )
    return member_view(member)


async def member_state(
    cmd: GetMemberState, uow: AuthUnitOfWork, principal: Principal
) -> MemberState:
    """The caller's own current role and whether they are active (the edge asks, for a token)."""
    member = await uow.users.member(principal.user_id, principal.organization_id)
    if member is None:
        raise UserGone()
    return MemberState(role=member.role_enum, active=member.active)


async def create_organization(
    cmd: CreateOrganization, uow: AuthUnitOfWork, principal: Principal
) -> OrganizationDetails:
    if not principal.is_operator:
        raise NotOperator()
    organization = Organization(name=cmd.name, slug=slugify(cmd.name))
    if await uow.organizations.slug_exists(organization.slug):
        raise OrganizationExists()
    try:
        await uow.organizations.add(organization)
    except DuplicateRow:
        raise OrganizationExists() from None
    await _organization_created(uow, organization)
    return OrganizationDetails(
        id=organization.id,
        name=organization.name,
        slug=organization.slug,
        created_at=to_wire(organization.created_at),
        member_count=0,
    )


async def create_member(
    cmd: CreateMember, uow: AuthUnitOfWork, principal: Principal, passwords: PasswordHasher
) -> MemberView:
    if not principal.is_operator:
        raise NotOperator()
    if len(cmd.password.encode()) > BCRYPT_MAX_BYTES:
        raise Invalid.fields(
            [
                FieldError(
                    field="password", message=f"password must be at most {BCRYPT_MAX_BYTES} bytes"
                )
            ]
        )
    password_hash = await passwords.hash(cmd.password)
    organization = await uow.organizations.by_slug(cmd.organization_slug)
    if organization is None:
        raise OrganizationNotFound()
    user = User(
        email=cmd.email.lower(),
        password_hash=password_hash,
        first_name=cmd.first_name,
        last_name=cmd.last_name,
        role=cmd.role,
        organization_id=organization.id,
    )
    if await uow.users.by_email(user.email) is not None:
        raise EmailTaken()
    try:
        await uow.users.add(user)
    except DuplicateRow:
        raise EmailTaken() from None
    await _joined(uow, user)
    return member_view(user)


async def find_member_by_email(
    cmd: FindMemberByEmail, uow: AuthUnitOfWork, principal: Principal
) -> MemberView:
    if not principal.is_operator:
        raise NotOperator()
    member = await uow.users.by_email(cmd.email.lower())
    if member is None:
        raise MemberNotFound()
    return member_view(member)


async def _member_to_change(
    cmd: ChangeRole | DeactivateMember | ReactivateMember,
    uow: AuthUnitOfWork,
    principal: Principal,
) -> tuple[User, User | None]:
    """The member and the caller as the database has them, with the organization's member
    changes serialised from here to the commit (two admins demoting each other at once: the
    second finds the first change made, and the last active ADMIN refused). The operator acts
    as the organization's ADMIN, under the same rules (the last active ADMIN stays)."""
    if principal.role != Role.ADMIN:
        raise NotAdmin()  # before any lookup: no oracle for who is a member
    await uow.organizations.lock(principal.organization_id)
    member = await uow.users.member(cmd.user_id, principal.organization_id)
    if member is None:
        raise MemberNotFound()
    cmd.check_version(member.version)  # If-Match: 412 when the member changed since
    if principal.is_operator:
        return member, None
    caller = await uow.users.member(principal.user_id, principal.organization_id)
    return member, caller


def _still_admin(caller: User | None, principal: Principal) -> None:
    """The caller is an active ADMIN now, not only when the token was issued: one demoted a
    moment ago changes nothing (the transaction rolls back). The operator is no member."""
    if principal.is_operator:
        return
    if caller is None or not caller.active or caller.role != Role.ADMIN:
        raise NotAdmin()


async def _organization_created(
    uow: AuthUnitOfWork, organization: Organization, *, actor: Principal | None = None
) -> None:
    notification = OrganizationCreated(
        organization_id=organization.id, name=organization.name, slug=organization.slug
    )
    await uow.emit(ORGANIZATION_CREATED, notification, actor=actor)


async def _joined(uow: AuthUnitOfWork, user: User, *, actor: Principal | None = None) -> None:
    notification = MemberJoined(
        member_id=user.id, organization_id=user.organization_id, role=user.role_enum
    )
    await uow.emit(MEMBER_JOINED, notification, actor=actor)


def member_view(member: User) -> MemberView:
    return MemberView(
        id=member.id,
        email=member.email,
        first_name=member.first_name,
        last_name=member.last_name,
        role=member.role_enum,
        organization_id=member.organization_id,
        created_at=to_wire(member.created_at),
        active=member.active,
        updated_at=to_wire(member.updated_at),
        version=member.version,
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
