"""The auth module's one entry point: `register` puts its handlers on the bus and returns the
module while it runs (its demo data, and what `close` releases)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from app.bus.bus import Bus
from app.bus.pipeline import Context
from app.modules.auth import handlers, seed
from app.modules.auth.contracts import (
    GET_ME,
    LOG_IN,
    SIGN_UP,
    GetMe,
    LogIn,
    LoginView,
    MeView,
    SignUp,
    SignUpView,
)
from app.modules.auth.passwords import PasswordHasher
from app.modules.auth.tokens import TokenIssuer
from app.modules.auth.uow import AuthUnitOfWork
from app.settings import Settings
from app.storage.engine import write_transaction


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

    async def sign_up(cmd: SignUp, context: Context) -> SignUpView:
        return await handlers.sign_up(cmd, _uow(context), passwords, tokens)

    async def log_in(cmd: LogIn, context: Context) -> LoginView:
        return await handlers.log_in(cmd, _uow(context), passwords, tokens)

    async def get_me(cmd: GetMe, context: Context) -> MeView:
        return await handlers.get_me(cmd, _uow(context), context.principal)

    bus.handle(SIGN_UP, sign_up)
    bus.handle(LOG_IN, log_in)
    bus.handle(GET_ME, get_me)
    return Running(passwords)


def demo_logins() -> str:
    """The seeded accounts, as a developer needs them to try the API."""
    accounts = ", ".join(f"{u['email']} ({u['role']})" for u in seed.USERS)
    return f"{accounts}; password {seed.DEMO_PASSWORD}"


def _uow(context: Context) -> AuthUnitOfWork:
    assert context.tx is not None, "auth handlers run inside the transaction middleware"
    return AuthUnitOfWork(context.tx)
