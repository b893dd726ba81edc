"""The app and a worker wire the bus and the modules alike, and release what the modules hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.bootstrap import build_bus
from app.storage.connect import open_database
from tests.conftest import make_settings


async def test_closing_the_modules_stops_bcrypts_threads(tmp_path: Path):
    settings = make_settings(tmp_path / "boot.db")
    database = open_database(settings.database_url)
    parts = build_bus(settings, database)
    passwords = parts.running["auth"].passwords  # type: ignore[attr-defined]
    assert (await passwords.hash("Password123!")).startswith("$2")

    parts.close()

    with pytest.raises(RuntimeError, match="shutdown"):
        await passwords.hash("Password123!")
    await database.close()
