"""Auth handlers over a real SQLite unit of work."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading

import bcrypt
import jwt
import pytest
from sqlalchemy import func, select

from app.errors import Invalid
from app.identity import Principal, Role
from app.modules.auth import handlers
from app.modules.auth.contracts import (
    ChangeRole,
    EmailTaken,
    GetMe,
    InvalidCredentials,
    LastAdmin,
    LogIn,
    OrganizationNotFound,
    SignUp,
)
from app.modules.auth.model import ORGANIZATIONS, USERS, slugify
from app.modules.auth.passwords import PasswordHasher
from app.modules.auth.tokens import TokenIssuer
from app.modules.auth.uow import AuthUnitOfWork
from app.storage.port import Query, Transaction
from tests.modules.conftest import BUS, Transactions

SECRET = "handler-test-secret-0123456789abcdef"
PASSWORDS = PasswordHasher(rounds=4)
TOKENS = TokenIssuer(SECRET, expires_in=600)


def founder(email: str = "founder@globex.com", org: str = "Globex") -> SignUp:
    return SignUp(
        email=email,
        password="Founder123!",
        first_name="Hank",
        last_name="Scorpio",
        organization_name=org,
    )


async def test_founding_an_org_makes_its_admin_and_a_valid_token(tx: Transactions):
    async with tx() as t:
        view = await handlers.sign_up(founder(), AuthUnitOfWork(t, BUS), PASSWORDS, TOKENS)

    assert view.user.role == Role.ADMIN
    claims = jwt.decode(view.access_token, SECRET, algorithms=["HS256"])
    assert claims["sub"] == view.user.id
    assert claims["organizationId"] == view.user.organization_id
    async with tx() as t:
        org = await AuthUnitOfWork(t, BUS).organizations.get(view.user.organization_id)
        user = await AuthUnitOfWork(t, BUS).users.get(view.user.id)
    assert org is not None and org.slug == "globex"
    assert user is not None and user.password_hash.startswith("$2b$04$")
    assert bcrypt.checkpw(b"Founder123!", user.password_hash.encode())


async def test_joining_an_org_never_grants_more_than_user(tx: Transactions):
    async with tx() as t:
        admin = await handlers.sign_up(founder(), AuthUnitOfWork(t, BUS), PASSWORDS, TOKENS)
    joiner = SignUp(
        email="joiner@globex.com",
        password="Joiner123!",
        first_name="Jo",
        last_name="Iner",
        organization_id=admin.user.organization_id,
    )
    async with tx() as t:
        view = await handlers.sign_up(joiner, AuthUnitOfWork(t, BUS), PASSWORDS, TOKENS)

    assert view.user.role == Role.USER


async def test_failed_signup_writes_nothing(tx: Transactions):
    async with tx() as t:
        await handlers.sign_up(founder(), AuthUnitOfWork(t, BUS), PASSWORDS, TOKENS)

    with pytest.raises(EmailTaken):
        async with tx() as t:
            await handlers.sign_up(
                founder(email="FOUNDER@globex.com", org="Another Org"),
                AuthUnitOfWork(t, BUS),
                PASSWORDS,
                TOKENS,
            )
    with pytest.raises(OrganizationNotFound):
        async with tx() as t:
            await handlers.sign_up(
                SignUp(
                    email="x@y.io",
                    password="Xylophone1!",
                    first_name="Xy",
                    last_name="Lo",
                    organization_id="missing",
                ),
                AuthUnitOfWork(t, BUS),
                PASSWORDS,
                TOKENS,
            )

    async with tx() as t:
        assert await t.fetch_one(Query(select(func.count()).select_from(ORGANIZATIONS))) == (1,)
        assert await t.fetch_one(Query(select(func.count()).select_from(USERS))) == (1,)


async def test_login_and_me(tx: Transactions):
    async with tx() as t:
        signed = await handlers.sign_up(founder(), AuthUnitOfWork(t, BUS), PASSWORDS, TOKENS)

    async with tx() as t:
        view = await handlers.log_in(
            LogIn(email=" Founder@Globex.com ", password="Founder123!"),
            AuthUnitOfWork(t, BUS),
            PASSWORDS,
            TOKENS,
        )
        me = await handlers.get_me(
            GetMe(),
            AuthUnitOfWork(t, BUS),
            Principal(
                user_id=signed.user.id,
                organization_id=signed.user.organization_id,
                role=Role.ADMIN,
                email=signed.user.email,
            ),
        )
    assert view.expires_in == 600
    assert me.organization.name == "Globex"

    async with tx() as t:
        with pytest.raises(InvalidCredentials):
            await handlers.log_in(
                LogIn(email="founder@globex.com", password="Wrong123!"),
                AuthUnitOfWork(t, BUS),
                PASSWORDS,
                TOKENS,
            )


async def test_bcrypt_never_runs_on_the_event_loop_thread(tx: Transactions, monkeypatch):
    loop_thread = threading.get_ident()
    threads: list[int] = []
    real_hashpw, real_checkpw = bcrypt.hashpw, bcrypt.checkpw

    def hashpw(password: bytes, salt: bytes) -> bytes:
        threads.append(threading.get_ident())
        return real_hashpw(password, salt)

    def checkpw(password: bytes, hashed: bytes) -> bool:
        threads.append(threading.get_ident())
        return real_checkpw(password, hashed)

    monkeypatch.setattr(bcrypt, "hashpw", hashpw)
    monkeypatch.setattr(bcrypt, "checkpw", checkpw)
    hasher = PasswordHasher(rounds=4)

    async with tx() as t:
        await handlers.sign_up(founder(), AuthUnitOfWork(t, BUS), hasher, TOKENS)
    async with tx() as t:
        for email in ("founder@globex.com", "unknown@globex.com"):
            with pytest.raises(InvalidCredentials):
                await handlers.log_in(
                    LogIn(email=email, password="Wrong123!"),
                    AuthUnitOfWork(t, BUS),
                    hasher,
                    TOKENS,
                )

    assert len(threads) == 4  # decoy hash (before the first check), signup, wrong password, decoy
    assert loop_thread not in threads


async def test_unknown_email_still_pays_for_a_password_check(tx: Transactions, monkeypatch):
    checks: list[bytes] = []
    real_checkpw = bcrypt.checkpw

    def checkpw(password: bytes, hashed: bytes) -> bool:
        checks.append(hashed)
        return real_checkpw(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", checkpw)

    async with tx() as t:
        with pytest.raises(InvalidCredentials):
            await handlers.log_in(
                LogIn(email="ghost@nowhere.io", password="Ghost123!"),
                AuthUnitOfWork(t, BUS),
                PasswordHasher(rounds=4),
                TOKENS,
            )

    assert len(checks) == 1 and checks[0].startswith(b"$2b$04$")


def test_password_over_72_bytes_is_invalid_before_any_hashing():
    cmd = founder()
    too_long = SignUp(
        email=cmd.email,
        password="Aa1" + "ü" * 35,
        first_name=cmd.first_name,
        last_name=cmd.last_name,
        organization_name="Globex",
    )

    with pytest.raises(Invalid):
        handlers._check_sign_up(too_long)


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Acme Corporation", "acme-corporation"),
        ("  Café  Déjà Vu! ", "cafe-deja-vu"),
        ("A&B", "a-b"),
        ("株式会社", "org-" + hashlib.sha256("株式会社".encode()).hexdigest()[:16]),
    ],
)
def test_slugify(name, slug):
    assert slugify(name) == slug


def test_names_without_latin_letters_get_distinct_slugs_alike_for_case():
    assert slugify("***") != slugify("株式会社")
    assert slugify("ΑΒΓ") == slugify("αβγ")


async def test_two_admins_demoting_each_other_in_concurrent_transactions_leave_one(
    tx: Transactions,
):
    """Both callers are admins when their transactions begin; the organization's lock makes
    the second wait for the first's commit, and then refuses to remove the last admin."""
    async with tx() as t:
        first = await handlers.sign_up(founder(), AuthUnitOfWork(t, BUS), PASSWORDS, TOKENS)
    organization_id = first.user.organization_id
    async with tx() as t:
        joined = await handlers.sign_up(
            SignUp(
                email="second@globex.com",
                password="Second123!",
                first_name="Second",
                last_name="Admin",
                organization_id=organization_id,
            ),
            AuthUnitOfWork(t, BUS),
            PASSWORDS,
            TOKENS,
        )
    a = Principal(
        user_id=first.user.id, organization_id=organization_id, role=Role.ADMIN, email="a"
    )
    b = Principal(
        user_id=joined.user.id, organization_id=organization_id, role=Role.ADMIN, email="b"
    )
    async with tx() as t:
        await handlers.change_role(
            ChangeRole(user_id=b.user_id, role=Role.ADMIN), AuthUnitOfWork(t, BUS), a
        )

    both_counted = asyncio.Event()
    counted = 0

    class Rendezvous(AuthUnitOfWork):
        """Each transaction, having counted the admins, waits (at most 0.5 s) for the other to
        have counted too: without the organization's lock both would count two admins."""

        def __init__(self, t: Transaction) -> None:
            super().__init__(t, BUS)
            count = self.users.active_admins

            async def active_admins(organization_id: str) -> int:
                nonlocal counted
                found = await count(organization_id)
                counted += 1
                if counted == 2:
                    both_counted.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(both_counted.wait(), 0.5)
                return found

            self.users.active_admins = active_admins  # type: ignore[method-assign]

    async def demote(target: Principal, caller: Principal) -> str:
        try:
            async with tx() as t:
                await handlers.change_role(
                    ChangeRole(user_id=target.user_id, role=Role.USER), Rendezvous(t), caller
                )
        except LastAdmin:
            return "LAST_ADMIN"
        return "demoted"

    outcomes = await asyncio.gather(demote(b, a), demote(a, b))
    async with tx() as t:
        admins = await AuthUnitOfWork(t, BUS).users.active_admins(organization_id)

    assert sorted(outcomes) == ["LAST_ADMIN", "demoted"]
    assert admins == 1
