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
from tests.conftest import PASSWORD, make_settings, serve

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
            record = {"correlation_id": parts[2], "logger": parts[3], "message": parts[4]}
            records.append(record | fields)
    return [r for r in records if r["logger"].startswith("app.")]


@pytest.fixture(params=["json", "text"])
def log_format(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


async def test_one_correlation_id_in_header_body_and_every_line_of_a_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], log_format: str
):
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
        capsys.readouterr()
        response = await client.get(
            f"/events/{UNKNOWN_EVENT}", headers={**headers, "X-Correlation-ID": "trace-me-1"}
        )
        records = parse(capsys.readouterr().err, log_format)

    assert response.status_code == 404
    assert response.headers["x-correlation-id"] == "trace-me-1"
    assert response.json()["correlationId"] == "trace-me-1"
    assert records, "the request wrote no log lines"
    assert {r["correlation_id"] for r in records} == {"trace-me-1"}
    messages = [r["message"] for r in records]
    assert sorted(messages) == ["handled", "handled", "request", "retrying", "sent", "sent"]
    handled = [r for r in records if r["message"] == "handled"]
    assert [str(r["attempt"]) for r in handled] == ["1", "2"]
    assert {str(r["cmd"]) for r in handled} == {"events.findOne"}
    assert {str(r["module"]) for r in handled} == {"events"}


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
