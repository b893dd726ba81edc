"""`uv run eventboard ...`: the operator's commands, on the same settings as the app.

A command that changes data sends the auth module's commands on the bus, as the HTTP routes do,
acting as the ADMIN of the member's organization: the same rules hold (the last active ADMIN
stays). Results are printed as JSON; a problem is one line on stderr and a non-zero exit: 2 for
an invalid setting, 1 for anything else. A password is read from a prompt, or from the first
line of stdin when it is not a terminal; never from an argument, which `ps` would show.

Those commands emit the module's notifications, as the routes do: before it exits, the CLI
relays what it emitted (so a member it changed is in the audit log at once). `dead-letters`
lists the notifications a subscriber gave up on, and replays them once the cause is mended.
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
from app.bootstrap import build_bus, sending_side, start_notifying
from app.bus.bus import Bus
from app.bus.contracts import Command
from app.bus.idempotency import purge_expired
from app.bus.subscribers import Subscribers
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
        notifying = start_notifying(
            settings,
            parts,
            database,
            set(parts.modules - sending.remote_modules),
            sending.remote.client if sending.remote is not None else None,
        )
        try:
            yield parts.bus
        finally:
            await notifying.drain(settings.shutdown_grace_seconds)  # what the command emitted
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


@asynccontextmanager
async def _subscribers(settings: Settings) -> AsyncIterator[tuple[Database, list[Subscribers]]]:
    """The database and every module's subscribers, as the app registers them."""
    async with _storage(settings) as database:
        parts = build_bus(settings, database)
        try:
            yield database, list(parts.bus.subscribers.values())
        finally:
            parts.close()


@main.group("dead-letters")
def dead_letters() -> None:
    """Notifications a subscriber failed on every attempt (also counted in /health)."""


@dead_letters.command("list")
@click.option("--limit", default=100, show_default=True, help="At most this many per module.")
def list_dead_letters(limit: int) -> None:
    """One JSON line per dead letter, oldest first."""

    async def work(settings: Settings) -> list[dict[str, Any]]:
        async with _subscribers(settings) as (database, groups):
            return [
                {
                    "subscriber": group.module,
                    "id": letter.id,
                    "pattern": letter.pattern,
                    "attempts": letter.attempts,
                    "parkedAt": letter.parked_at.isoformat(),
                    "error": letter.error,
                    "notification": msgspec.json.decode(letter.body),
                }
                for group in groups
                for letter in await group.dead_letters(database, limit)
            ]

    for letter in _run(work):
        _print(letter)


@dead_letters.command("replay")
@click.argument("ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Every dead letter.")
def replay_dead_letters(ids: tuple[str, ...], everything: bool) -> None:
    """Deliver dead letters again, in this process, exactly once (the subscriber's inbox still
    holds); one that fails again stays parked."""
    if not ids and not everything:
        _fail("name the dead letters' ids, or --all")

    async def work(settings: Settings) -> list[tuple[str, str]]:
        outcomes: list[tuple[str, str]] = []
        async with _subscribers(settings) as (database, groups):
            for group in groups:
                parked = [d.id for d in await group.dead_letters(database, 1_000_000)]
                for letter in parked if everything else [i for i in ids if i in parked]:
                    try:
                        took = await group.replay(database, letter)
                    except Exception as exc:
                        outcomes.append((letter, f"failed again: {type(exc).__name__}: {exc}"))
                        continue
                    outcomes.append((letter, "delivered" if took else "already delivered"))
        return outcomes

    outcomes = _run(work)
    for letter, outcome in outcomes:
        click.echo(f"{letter}: {outcome}")
    if not outcomes:
        _fail("no such dead letter")
    if any(outcome.startswith("failed") for _, outcome in outcomes):
        sys.exit(1)


@main.command()
def openapi() -> None:
    """Print the published OpenAPI document (what /api/openapi.json serves)."""
    from app.gateway.openapi import publish, query_contracts
    from app.main import create_app

    settings = _settings()
    app = create_app(settings)
    document = publish(app.openapi_schema.to_schema(), query_contracts(app))
    click.echo(msgspec.json.encode(document).decode())
