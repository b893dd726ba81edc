"""The operator's CLI (`uv run eventboard ...`), driven with click's runner on a real SQLite file,
and once as the installed console script in a process of its own."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from app.cli import main
from app.main import create_app
from app.settings import Fault
from tests.conftest import TEST_SECRET, WORKSHOP_ID, make_settings, serve


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cli.db"
    for name, value in {
        "APP_ENV": "test",
        "JWT_SECRET": TEST_SECRET,
        "DATABASE_URL": f"sqlite+aiosqlite:///{path}",
        "BCRYPT_ROUNDS": "4",
        "BUS_TRANSPORT": "local",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no .env of the checkout's
    return path


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_check_names_each_problem_in_one_line_and_passes_once_they_are_fixed(database: Path):
    before = run("check")
    run("create-org", "Initech")  # a command that uses the database migrates it (not production)
    after = run("check")

    assert before[0] == 1
    assert len(before[2].strip().splitlines()) == 1
    assert "needs" in before[2] and "make migrate" in before[2]
    assert after == (0, "ok: settings, database (at the migration head)\n", "")


def test_an_invalid_setting_is_one_line_and_exit_2(database: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("BCRYPT_ROUNDS", "99")

    code, _, err = run("check")

    assert code == 2
    assert err.strip() == (
        "eventboard: invalid configuration: BCRYPT_ROUNDS: must be an integer between 4 and 31 "
        "(got '99')"
    )


def test_an_operator_builds_an_organization_and_runs_its_members(database: Path):
    org = run("create-org", "Initech")
    peter = run(
        "create-user", "Peter@Initech.com", "--org", "initech", "--role", "ADMIN",
        "--first-name", "Peter", "--last-name", "Gibbons", stdin="Secret123!\n",
    )  # fmt: skip
    milton = run("create-user", "milton@initech.com", "--org", "initech", stdin="Stapler123!\n")
    last_admin = run("set-role", "peter@initech.com", "USER")
    promoted = run("set-role", "milton@initech.com", "MODERATOR")
    deactivated = run("deactivate", "milton@initech.com")
    unknown = run("deactivate", "nobody@initech.com")

    assert org[0] == 0 and json.loads(org[1])["slug"] == "initech"
    assert peter[0] == 0 and json.loads(peter[1])["email"] == "peter@initech.com"
    assert json.loads(milton[1])["role"] == "USER"
    assert last_admin[:2] == (1, "")
    assert last_admin[2].strip().endswith("(LAST_ADMIN)")
    assert json.loads(promoted[1])["role"] == "MODERATOR"
    assert json.loads(deactivated[1])["active"] is False
    assert unknown[0] == 1 and "MEMBER_NOT_FOUND" in unknown[2]

    peter_login, milton_login = asyncio.run(
        logins(database, ("peter@initech.com", "Secret123!"), ("milton@initech.com", "Stapler123!"))
    )
    assert peter_login.status_code == 200
    assert peter_login.json()["user"]["role"] == "ADMIN"
    assert milton_login.status_code == 401  # deactivated

    reactivated = run("reactivate", "milton@initech.com")
    assert json.loads(reactivated[1])["active"] is True


async def logins(database: Path, *accounts: tuple[str, str]) -> list[httpx.Response]:
    """The app on the CLI's database, logging in (in a test of its own loop: the CLI's commands
    run theirs)."""
    async with serve(create_app(make_settings(database, seed_demo_data=False))) as client:
        return [
            await client.post("/auth/login", json={"email": email, "password": password})
            for email, password in accounts
        ]


def test_a_password_is_never_an_argument(database: Path):
    run("create-org", "Initech")

    code, _, err = run(
        "create-user", "a@initech.com", "--org", "initech", "--password", "Secret123!"
    )
    help_text = run("create-user", "--help")[1]

    assert code == 2 and "No such option" in err
    assert "password" not in help_text.lower().replace("the password comes from a prompt", "")


def test_openapi_prints_the_published_document(database: Path):
    code, out, _ = run("openapi")

    document = json.loads(out)
    assert code == 0
    assert "/organization/members/{user_id}" in document["paths"]
    assert "ETag" in document["paths"]["/events/{event_id}"]["get"]["responses"]["200"]["headers"]


def test_the_installed_console_script_runs_in_a_process_of_its_own(database: Path):
    run("create-org", "Initech")
    script = Path(sys.executable).with_name("eventboard")

    done = subprocess.run(
        [str(script), "check"], capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok: settings, database (at the migration head)\n"


def test_the_operators_changes_are_in_the_audit_log_at_once(database: Path):
    run("create-org", "Initech")
    run(
        "create-user", "bill@initech.com", "--org", "initech", "--role", "ADMIN", stdin="Bill123!\n"
    )
    run("set-role", "bill@initech.com", "MODERATOR")  # refused: he is the last ADMIN
    run("create-user", "pete@initech.com", "--org", "initech", stdin="Pete123!\n")
    run("set-role", "pete@initech.com", "MODERATOR")

    entries = _audit(database)

    assert [(action, actor) for action, actor, _ in entries] == [
        ("organization.created", "operator"),
        ("member.joined", "operator"),
        ("member.joined", "operator"),
        ("member.role_changed", "operator"),
    ]


def _audit(database: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT action, actor_id, id FROM audit_entries ORDER BY at").fetchall()
    return [(str(a), str(b), str(c)) for a, b, c in rows]


def test_a_dead_letter_shows_in_health_and_is_listed_and_replayed(database: Path):
    """An audit subscriber that fails on every attempt parks the approval; /health says so;
    once the cause is gone (here: the fault is not in the CLI's settings), the operator lists
    it and replays it, and it is entered once."""
    approved, health = asyncio.run(_approve_with_a_poisoned_audit(database))
    assert approved == 200
    assert health["status"] == "degraded"
    assert health["notifications"] == {"deadLetters": 1, "outboxLagSeconds": 0.0}

    code, listed, _ = run("dead-letters", "list")
    letter = json.loads(listed)
    assert code == 0
    assert (letter["subscriber"], letter["pattern"], letter["attempts"]) == (
        "audit",
        "events.approved",
        2,
    )
    assert "injected internal error" in letter["error"]
    assert letter["notification"]["payload"]["eventId"] == WORKSHOP_ID

    replayed = run("dead-letters", "replay", "--all")
    again = run("dead-letters", "replay", letter["id"])

    assert replayed == (0, f"{letter['id']}: delivered\n", "")
    assert again[0] == 1 and "no such dead letter" in again[2]
    assert [(a, i) for a, _, i in _audit(database)] == [("event.approved", letter["id"])]
    assert run("dead-letters", "list")[1] == ""


async def _approve_with_a_poisoned_audit(database: Path) -> tuple[int, dict[str, Any]]:
    poisoned = make_settings(
        database,
        notification_attempts=2,
        notification_backoff=0.01,
        bus_faults=(Fault(cmd="audit:events.approved", error="internal", fail_times=99),),
    )
    async with serve(create_app(poisoned)) as client:
        login = await client.post(
            "/auth/login", json={"email": "admin@acme.com", "password": "Password123!"}
        )
        admin = {"Authorization": f"Bearer {login.json()['accessToken']}"}
        approved = await client.post(f"/events/{WORKSHOP_ID}/approve", headers=admin)
        health: dict[str, Any] = {}
        for _ in range(100):  # until the relay has tried twice and parked it
            health = (await client.get("/health")).json()
            if health["notifications"] == {"deadLetters": 1, "outboxLagSeconds": 0.0}:
                break
            await asyncio.sleep(0.05)

    return approved.status_code, health
