"""Structured logs: one JSON object per line, the correlation id on every line of a request,
and no password, token or raw invalid header value anywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from app.main import create_app
from tests.conftest import PASSWORD, make_settings


def lines(err: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


async def test_a_requests_lines_share_its_correlation_id_and_hide_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    settings = make_settings(tmp_path / "log.db", log_format="json", log_level="INFO")
    async with AsyncTestClient(app=create_app(settings)) as client:
        capsys.readouterr()
        login = await client.post(
            "/auth/login",
            json={"email": "admin@acme.com", "password": PASSWORD},
            headers={"X-Correlation-ID": "trace-me-1"},
        )
        token = login.json()["accessToken"]
        await client.get(
            "/events",
            headers={
                "Authorization": f"Bearer {token}",
                "X-Correlation-ID": "evil\x7finjected-zq9",
            },
        )

    err = capsys.readouterr().err
    records = lines(err)
    traced = [r for r in records if r.get("correlation_id") == "trace-me-1"]
    assert {r["message"] for r in traced} == {"handled", "request"}
    handled = next(r for r in traced if r["message"] == "handled")
    assert handled["cmd"] == "auth.login" and handled["outcome"] == "ok"
    request = next(r for r in traced if r["message"] == "request")
    assert request["route"] == "/auth/login" and request["status"] == 200
    assert all({"time", "level", "message"} <= set(r) for r in records)

    assert PASSWORD not in err
    assert token not in err
    assert token.split(".")[2] not in err
    assert "injected-zq9" not in err
