"""The auth module's one entry point: `register` puts its handlers on the bus and returns the
module while it runs (its demo data, and what `close` releases)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from app.bus.bus import Bus
from app.bus.pipeline import Context
from app.identity import Principal
from app.modules.auth import handlers, seed
from app.modules.auth.contracts import (
    CHANGE_ROLE,
    CREATE_MEMBER,
    CREATE_ORGANIZATION,
    DEACTIVATE_MEMBER,
    FIND_MEMBER,
    FIND_MEMBER_BY_EMAIL,
    GET_ME,
    GET_MEMBER_STATE,
    GET_ORGANIZATION,
    LIST_MEMBERS,
    LOG_IN,
    REACTIVATE_MEMBER,
    SIGN_UP,
    TOPICS,
    CreateMember,
    GetMe,
    LogIn,
    LoginView,
    MemberView,
    MeView,
    SignUp,
    SignUpView,
)
from app.modules.auth.passwords import PasswordHasher
from app.modules.auth.tokens import TokenIssuer
from app.modules.auth.uow import AuthUnitOfWork
from app.settings import Settings
from app.storage.engine import write_transaction

R = TypeVar("R")


@dataclass(frozen=True)
class Running:
    """The module while it serves: what it holds until the process stops (bcrypt's threads)."""

    passwords: PasswordHasher

    async def seed_demo_data(self, engine: AsyncEngine) -> None:
        async with write_transaction(engine) as session:
            await seed.seed(session, self.passwords)

    def close(self) -> None:
        self.passwords.close()


def register(bus: Bus, settings: Settings) -> Running:
    passwords = PasswordHasher(
        settings.bcrypt_rounds, settings.bcrypt_threads, max_wait=settings.bcrypt_max_wait
    )
    tokens = TokenIssuer(settings.jwt_secret, settings.jwt_expires_in)
    for topic in TOPICS:
        bus.declare(topic)

    def _uow(context: Context) -> AuthUnitOfWork:
        assert context.tx is not None, "auth handlers run inside the transaction middleware"
        return AuthUnitOfWork(context.tx, bus)

    def _as_caller(
        handler: Callable[[Any, AuthUnitOfWork, Principal], Awaitable[R]],
    ) -> Callable[[Any, Context], Awaitable[R]]:
        """A handler of the caller's own organization: its unit of work and the principal."""

        @functools.wraps(handler)
        async def handle(cmd: Any, context: Context) -> R:
            return await handler(cmd, _uow(context), context.principal)

        return handle

    async def sign_up(cmd: SignUp, context: Context) -> SignUpView:
        return await handlers.sign_up(cmd, _uow(context), passwords, tokens)

    async def log_in(cmd: LogIn, context: Context) -> LoginView:
        return await handlers.log_in(cmd, _uow(context), passwords, tokens)

    async def get_me(cmd: GetMe, context: Context) -> MeView:
        return await handlers.get_me(cmd, _uow(context), context.principal)

    bus.handle(SIGN_UP, sign_up)
    bus.handle(LOG_IN, log_in)
    bus.handle(GET_ME, get_me)
    for command, handler in (
        (GET_ORGANIZATION, handlers.get_organization),
        (LIST_MEMBERS, handlers.list_members),
        (FIND_MEMBER, handlers.find_member),
        (CHANGE_ROLE, handlers.change_role),
        (DEACTIVATE_MEMBER, handlers.deactivate_member),
        (REACTIVATE_MEMBER, handlers.reactivate_member),
        (GET_MEMBER_STATE, handlers.member_state),
        (CREATE_ORGANIZATION, handlers.create_organization),
        (FIND_MEMBER_BY_EMAIL, handlers.find_member_by_email),
    ):
        bus.handle(command, _as_caller(handler))

    async def create_member(cmd: CreateMember, context: Context) -> MemberView:
        return await handlers.create_member(cmd, _uow(context), context.principal, passwords)

    bus.handle(CREATE_MEMBER, create_member)
    return Running(passwords)


def demo_logins() -> str:
    """The seeded accounts, as a developer needs them to try the API."""
    accounts = ", ".join(f"{u['email']} ({u['role']})" for u in seed.USERS)
    return f"{accounts}; password {seed.DEMO_PASSWORD}"
