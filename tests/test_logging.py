"""Structured logs, in both formats: every line of a request carries its correlation id (gateway,
send side, handle side, retries), the same id the client gets in the header and problem body;
no password, token or raw invalid header value is ever written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.main import create_app
from app.settings import Fault
from tests.conftest import ACME_ID, ADMIN_ID, PASSWORD, login, make_settings, serve

UNKNOWN_EVENT = "00000000-0000-0000-0000-00000000dead"


def parse(err: str, log_format: str) -> list[dict[str, Any]]:
    """The app's log lines as {correlation_id, message, logger, ...}, whichever the format.
    (The test client's own httpx lines are not the server's and are left out.)"""
    if log_format == "json":
        records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
        return [r for r in records if r["logger"].startswith("app.")]
    records = []
    for line in err.splitlines():
        parts = line.split(" | ")
        if len(parts) >= 5 and parts[1].strip() in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            fields = (
                dict(kv.split("=", 1) for kv in parts[5].split() if "=" in kv)
                if len(parts) > 5
                else {}
            )
            record = {
                "level": parts[1].strip(),
                "correlation_id": parts[2],
                "logger": parts[3],
                "message": parts[4],
            }
            records.append(record | fields)
    return [r for r in records if r["logger"].startswith("app.")]


@pytest.fixture(params=["json", "text"])
def log_format(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


async def test_at_info_a_request_is_one_line_naming_its_command_caller_and_ids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], log_format: str
):
    """One line per request at INFO, with everything an operator greps for; what went wrong (a
    retry) gets a line of its own, with the same correlation id."""
    settings = make_settings(
        tmp_path / "log.db",
        log_format=log_format,
        log_level="INFO",
        retry_base_delay=0.0,
        bus_faults=(Fault(cmd="events.findOne", fail_times=1, error="unavailable"),),
    )
    async with serve(create_app(settings)) as client:
        login = await client.post(
            "/auth/login", json={"email": "admin@acme.com", "password": PASSWORD}
        )
        headers = {"Authorization": f"Bearer {login.json()['accessToken']}"}
        # A member's first request also asks the auth module for their current role (its line
        # names auth.memberState too); the lines below are about a request's own command.
        await client.get("/organization", headers=headers)
        capsys.readouterr()
        response = await client.get(
            f"/events/{UNKNOWN_EVENT}", headers={**headers, "X-Correlation-ID": "trace-me-1"}
        )
        records = parse(capsys.readouterr().err, log_format)

    assert response.status_code == 404
    assert response.headers["x-correlation-id"] == "trace-me-1"
    assert response.json()["correlationId"] == "trace-me-1"
    assert {r["correlation_id"] for r in records} == {"trace-me-1"}
    assert [r["message"] for r in records] == ["retrying", "request"]
    line = records[1]
    assert {k: str(v) for k, v in line.items() if k not in ("duration_ms", "cmd_ms")} == {
        "correlation_id": "trace-me-1",
        "logger": "app.gateway.edge",
        "message": "request",
        "method": "GET",
        "route": "/events/{event_id}",
        "status": "404",
        "code": "EVENT_NOT_FOUND",
        "user_id": ADMIN_ID,
        "organization_id": ACME_ID,
        "event_id": UNKNOWN_EVENT,
        "cmd": "events.findOne",
        "module": "events",
        "attempts": "2",
        "outcome": "EVENT_NOT_FOUND",
        "level": "INFO",
    } | ({"time": line["time"]} if log_format == "json" else {})
    assert float(line["duration_ms"]) >= float(line["cmd_ms"]) > 0


async def test_at_debug_each_command_also_gets_its_sent_and_handled_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], log_format: str
):
    settings = make_settings(tmp_path / "log.db", log_format=log_format, log_level="DEBUG")
    async with serve(create_app(settings)) as client:
        token = await login(client, "admin@acme.com")
        await client.get("/organization", headers={"Authorization": f"Bearer {token}"})
        capsys.readouterr()
        await client.get(
            f"/events/{UNKNOWN_EVENT}",
            headers={"Authorization": f"Bearer {token}", "X-Correlation-ID": "trace-me-2"},
        )
        records = parse(capsys.readouterr().err, log_format)

    mine = [r for r in records if r["correlation_id"] == "trace-me-2"]
    assert [r["message"] for r in mine] == ["handled", "sent", "request"]
    assert {(r["side"], str(r["outcome"])) for r in mine[:2]} == {
        ("handle", "EVENT_NOT_FOUND"),
        ("send", "EVENT_NOT_FOUND"),
    }


async def test_a_failed_command_and_a_slow_one_get_warning_lines_of_their_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], log_format: str
):
    settings = make_settings(
        tmp_path / "log.db",
        log_format=log_format,
        log_level="INFO",
        slow_command_ms=50,
        timeout_read=0.3,
        attempts_read=1,
        bus_faults=(
            Fault(cmd="events.findOne", delay_ms=1000),
            Fault(cmd="events.findAll", delay_ms=100),
        ),
    )
    async with serve(create_app(settings)) as client:
        token = await login(client, "admin@acme.com")
        capsys.readouterr()
        headers = {"Authorization": f"Bearer {token}"}
        timed_out = await client.get(f"/events/{UNKNOWN_EVENT}", headers=headers)
        slow = await client.get("/events", headers=headers)
        records = parse(capsys.readouterr().err, log_format)

    assert (timed_out.status_code, slow.status_code) == (504, 200)
    lines = [(r["message"], r.get("level"), r.get("outcome")) for r in records]
    failed = next(r for r in records if r["message"] == "command failed")
    assert (failed["cmd"], failed["outcome"]) == ("events.findOne", "UPSTREAM_TIMEOUT")
    slow_line = next(r for r in records if r["message"] == "slow command")
    assert slow_line["cmd"] == "events.findAll"
    assert float(slow_line["duration_ms"]) >= 100
    requests = [r for r in records if r["message"] == "request"]
    assert [str(r["status"]) for r in requests] == ["504", "200"], lines


async def test_invalid_ids_are_replaced_and_secrets_never_logged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], log_format: str
):
    settings = make_settings(tmp_path / "log.db", log_format=log_format, log_level="DEBUG")
    async with serve(create_app(settings)) as client:
        capsys.readouterr()
        login = await client.post(
            "/auth/login",
            json={"email": "admin@acme.com", "password": PASSWORD},
            headers={"X-Correlation-ID": "evil\x7finjected-zq9"},
        )
        token = login.json()["accessToken"]
        await client.get("/events", headers={"Authorization": f"Bearer {token}"})
        err = capsys.readouterr().err

    replaced = login.headers["x-correlation-id"]
    assert len(replaced) == 36
    records = parse(err, log_format)
    assert replaced in {r["correlation_id"] for r in records}
    assert "injected-zq9" not in err
    assert PASSWORD not in err
    assert token not in err
    assert token.split(".")[2] not in err
    assert "$2b$" not in err  # no password hash, not even from SQL parameters at DEBUG


def test_stdlib_loggers_write_into_the_same_sink_with_the_correlation_id(
    capsys: pytest.CaptureFixture[str],
):
    import logging

    from loguru import logger

    from app.logging import configure_logging

    logging.getLogger("uvicorn.error").disabled = True  # as a dictConfig run elsewhere leaves it
    configure_logging(make_settings(Path("unused.db"), log_format="json", log_level="INFO"))
    capsys.readouterr()
    with logger.contextualize(correlation_id="std-1"):
        logging.getLogger("uvicorn.error").warning("from uvicorn")
        logging.getLogger("litestar").error("from litestar")
        logging.getLogger("sqlalchemy.engine").info("SELECT secret FROM hidden")

    records = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(r["logger"], r["message"], r["correlation_id"]) for r in records] == [
        ("uvicorn.error", "from uvicorn", "std-1"),
        ("litestar", "from litestar", "std-1"),
    ]
