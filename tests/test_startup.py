"""A misconfigured start ends at once, with one line naming the problem and the fix."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from app.settings import Settings
from app.startup import StartupError, preflight
from app.storage.engine import alembic_head, create_engine, upgrade_to_head

ROOT = Path(__file__).resolve().parents[1]
SECRET = "s" * 32


def settings(**env: str) -> Settings:
    return Settings.from_env({"JWT_SECRET": SECRET, **env}, env_file=None)


async def test_a_sqlite_file_where_no_folder_can_be_made_is_named(tmp_path: Path):
    (tmp_path / "a-file").write_text("")
    path = tmp_path / "a-file" / "eventboard.db"

    with pytest.raises(
        StartupError, match=rf"SQLite database {re.escape(str(path))}.*DATABASE_URL"
    ):
        await preflight(settings(DATABASE_URL=f"sqlite+aiosqlite:///{path}"))


async def test_production_refuses_a_database_behind_the_migrations(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'prod.db'}"

    with pytest.raises(StartupError, match=r"never migrated.*run `make migrate`"):
        await preflight(settings(APP_ENV="production", DATABASE_URL=url))

    engine = create_engine(url)
    await upgrade_to_head(engine)
    await engine.dispose()
    await preflight(settings(APP_ENV="production", DATABASE_URL=url))  # now at head: starts


async def test_an_unreachable_postgresql_is_named():
    url = "postgresql+asyncpg://postgres@127.0.0.1:1/postgres"

    with pytest.raises(StartupError, match=re.escape("cannot reach PostgreSQL at 127.0.0.1:1")):
        await preflight(settings(DATABASE_URL=url))


@pytest.mark.skipif(
    not os.environ.get("TEST_POSTGRES_URL"),
    reason="TEST_POSTGRES_URL is not set (e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/postgres)",
)
@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"username": "no_such_role"}, "refused the role 'no_such_role'"),
        ({"database": "no_such_database"}, "has no database 'no_such_database'"),
    ],
)
async def test_a_wrong_postgresql_role_or_database_is_named(change, said):
    url = make_url(os.environ["TEST_POSTGRES_URL"]).set(**change)

    with pytest.raises(StartupError, match=said):
        await preflight(settings(DATABASE_URL=url.render_as_string(hide_password=False)))


async def test_an_unreachable_nats_is_named(tmp_path: Path):
    env = {"BUS_TRANSPORT": "nats", "NATS_URL": "nats://127.0.0.1:1"}

    with pytest.raises(StartupError, match=re.escape("cannot reach NATS at nats://127.0.0.1:1")):
        await preflight(settings(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'n.db'}", **env))


def test_the_server_exits_with_one_line_and_no_traceback(tmp_path: Path):
    env = {
        **os.environ,
        "APP_ENV": "production",
        "JWT_SECRET": SECRET,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'never-migrated.db'}",
    }
    server = subprocess.run(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--port", "0"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert server.returncode == 3
    assert server.stderr.strip().splitlines() == [
        "eventboard: cannot start: the database is at migration none (never migrated), this "
        f"code needs {alembic_head()}: run `make migrate` (with APP_ENV=production the server "
        "never migrates by itself)"
    ]
