"""`uv run eventboard ...`: the operator's commands, on the same settings as the app.

A command that changes data sends the auth module's commands on the bus, as the HTTP routes do,
acting as the ADMIN of the member's organization: the same rules hold (the last active ADMIN
stays). Results are printed as JSON; a problem is one line on stderr and a non-zero exit: 2 for
an invalid setting, 1 for anything else. A password is read from a prompt, or from the first
line of stdin when it is not a terminal; never from an argument, which `ps` would show.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, NoReturn, TypeVar

import click
import msgspec

from app import startup
from app.bootstrap import build_bus, sending_side
from app.bus.bus import Bus
from app.bus.contracts import Command
from app.bus.idempotency import purge_expired
from app.errors import AppError
from app.identity import Principal, Role
from app.logging import configure_logging
from app.modules.auth.contracts import (
    CHANGE_ROLE,
    CREATE_MEMBER,
    CREATE_ORGANIZATION,
    DEACTIVATE_MEMBER,
    FIND_MEMBER_BY_EMAIL,
    REACTIVATE_MEMBER,
    ChangeRole,
    CreateMember,
    CreateOrganization,
    DeactivateMember,
    FindMemberByEmail,
    MemberView,
    ReactivateMember,
)
from app.settings import Settings, SettingsError
from app.storage.connect import open_database
from app.storage.engine import create_engine, upgrade_to_head
from app.storage.port import Database

T = TypeVar("T")
ROLES = click.Choice([role.value for role in Role])


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"eventboard: {message}", err=True)
    sys.exit(code)


def _settings() -> Settings:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        _fail(f"invalid configuration: {exc}", 2)
    # The command's own output is what matters here: the app's lines only when something is off.
    configure_logging(msgspec.structs.replace(settings, log_level="WARNING"))
    return settings


def _run(work: Callable[[Settings], Coroutine[Any, Any, T]]) -> T:
    settings = _settings()
    try:
        return asyncio.run(work(settings))
    except AppError as error:
        _fail(f"{error.message} ({error.code})")
    except startup.StartupError as error:
        _fail(str(error))


@asynccontextmanager
async def _storage(settings: Settings) -> AsyncIterator[Database]:
    """The app's database, migrated first outside production (as the app and a worker do)."""
    startup.check(settings)
    if not settings.is_production:
        engine = create_engine(settings.database_url)
        await upgrade_to_head(engine)
        await engine.dispose()
    database = open_database(settings.database_url)
    await database.open()
    try:
        yield database
    finally:
        await database.close()


@asynccontextmanager
async def _bus(settings: Settings) -> AsyncIterator[Bus]:
    """The bus as the app builds it; with BUS_TRANSPORT=nats, the commands of modules served by
    workers go to them."""
    async with _storage(settings) as database:
        parts = build_bus(settings, database)
        sending = sending_side(settings, parts, name="eventboard-cli")
        parts.bus.connect(sending.transport)
        if sending.remote is not None:
            await sending.remote.open()
        try:
            yield parts.bus
        finally:
            if sending.remote is not None:
                await sending.remote.close()
            parts.close()


async def _send(bus: Bus, command: Command, payload: Any, organization_id: str = "") -> Any:
    return await bus.send(command.pattern, payload, principal=Principal.operator(organization_id))


def _print(view: Any) -> None:
    click.echo(msgspec.json.encode(view).decode())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """EventBoard's operator commands. Settings come from the environment (and .env), as the
    app's do."""


@main.command()
def check() -> None:
    """Settings valid, the database reachable and at the migration head, NATS reachable when the
    bus uses it. One line per problem; exit 1 if there is any."""
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        _fail(f"invalid configuration: {exc}", 2)
    problems = asyncio.run(startup.problems(settings))
    for problem in problems:
        click.echo(f"eventboard: {problem}", err=True)
    if problems:
        sys.exit(1)
    click.echo(
        "ok: settings, database (at the migration head)"
        + (", NATS" if settings.bus_transport == "nats" else "")
    )


@main.command("create-org")
@click.argument("name")
def create_org(name: str) -> None:
    """Create an organization NAME (its slug is made from the name)."""

    async def work(settings: Settings) -> Any:
        async with _bus(settings) as bus:
            return await _send(bus, CREATE_ORGANIZATION, CreateOrganization(name=name))

    _print(_run(work))


@main.command("create-user")
@click.argument("email")
@click.option("--org", "slug", required=True, help="The organization's slug.")
@click.option("--role", type=ROLES, default="USER", show_default=True)
@click.option("--first-name", default="New", show_default=True)
@click.option("--last-name", default="Member", show_default=True)
def create_user(email: str, slug: str, role: str, first_name: str, last_name: str) -> None:
    """Add a member EMAIL to an organization. The password comes from a prompt, or from stdin."""
    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    command = CreateMember(
        email=email,
        password=password,
        first_name=first_name,
        last_name=last_name,
        organization_slug=slug,
        role=Role(role),
    )

    async def work(settings: Settings) -> Any:
        async with _bus(settings) as bus:
            return await _send(bus, CREATE_MEMBER, command)

    _print(_run(work))


def _member_change(email: str, change: Callable[[str], tuple[Command, Any]]) -> None:
    """Look the member up by email, then send the change as their organization's operator."""

    async def work(settings: Settings) -> Any:
        async with _bus(settings) as bus:
            member: MemberView = await _send(
                bus, FIND_MEMBER_BY_EMAIL, FindMemberByEmail(email=email)
            )
            command, payload = change(member.id)
            return await _send(bus, command, payload, member.organization_id)

    _print(_run(work))


@main.command("set-role")
@click.argument("email")
@click.argument("role", type=ROLES)
def set_role(email: str, role: str) -> None:
    """Give the member EMAIL the role ROLE (the last active ADMIN stays one)."""
    _member_change(
        email, lambda user_id: (CHANGE_ROLE, ChangeRole(user_id=user_id, role=Role(role)))
    )


@main.command()
@click.argument("email")
def deactivate(email: str) -> None:
    """Lock the member EMAIL out: no login, their tokens stop working within 5 s."""
    _member_change(email, lambda user_id: (DEACTIVATE_MEMBER, DeactivateMember(user_id=user_id)))


@main.command()
@click.argument("email")
def reactivate(email: str) -> None:
    """Let the member EMAIL back in."""
    _member_change(email, lambda user_id: (REACTIVATE_MEMBER, ReactivateMember(user_id=user_id)))


@main.command("purge-idempotency")
def purge_idempotency() -> None:
    """Delete the expired Idempotency-Key records now (the app also does it in the background)."""

    async def work(settings: Settings) -> int:
        async with _storage(settings) as database:
            return await purge_expired(database)

    click.echo(f"purged {_run(work)} expired idempotency keys")


@main.command()
def openapi() -> None:
    """Print the published OpenAPI document (what /api/openapi.json serves)."""
    from app.gateway.openapi import publish, query_contracts
    from app.main import create_app

    settings = _settings()
    app = create_app(settings)
    document = publish(app.openapi_schema.to_schema(), query_contracts(app))
    click.echo(msgspec.json.encode(document).decode())
