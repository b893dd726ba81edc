"""The published schema is the contract: schemathesis, every check in every phase (examples,
coverage, fuzzing, stateful), against the real server in its own process, as ADMIN and as USER.

A failure prints schemathesis's report, with a `curl` to reproduce each case. The run is bounded
in time; longer: `FUZZ_SECONDS=600 uv run pytest tests/contract`, another draw:
`FUZZ_SEED=<n>`. The exceptions (rules JSON Schema cannot state) are in schemathesis.toml.
Outside tests/e2e: the schema is the gateway's, so it is checked once, not again per stack.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import PASSWORD
from tests.e2e.servers import ROOT, uvicorn

SECONDS = os.environ.get("FUZZ_SECONDS", "60")
SEED = os.environ.get("FUZZ_SEED", "20261202")
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


@pytest.mark.parametrize("email", ["admin@acme.com", "user@acme.com"])
async def test_the_server_keeps_to_its_published_schema(tmp_path: Path, email: str):
    unlimited = {
        "RATE_LIMIT_PER_MINUTE": "0",
        "LOGIN_FAILURES_PER_15MIN": "0",
        "LOGIN_CONCURRENCY_PER_CLIENT": "0",
    }
    async with uvicorn(tmp_path, **unlimited) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            login = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
            schema = (await client.get("/api/openapi.json")).json()
        assert login.status_code == 200, login.text
        operations = sum(len(methods) for methods in schema["paths"].values())
        run = await asyncio.create_subprocess_exec(
            str(SCHEMATHESIS), "--no-color", "run", f"{server.url}/api/openapi.json",
            "--checks", "all", "--phases", "examples,coverage,fuzzing,stateful",
            "--max-examples", "50", "--max-time", SECONDS, "--seed", SEED,
            "--generation-database", "none", "--request-timeout", "10",
            cwd=ROOT,
            env={
                **os.environ,
                "EVENTBOARD_TOKEN": login.json()["accessToken"],
                "PYTHONPATH": str(ROOT),
            },
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        report, _ = await run.communicate()

    text = report.decode(errors="replace")
    assert run.returncode == 0, text[-20000:]
    assert f"Tested: {operations}" in text  # every operation, /metrics and the probes included
    assert "5xx" not in text.split("SUMMARY")[-1]
