"""Schema-driven fuzzing: schemathesis generates requests from /api/openapi.json for every
operation, sent in-process to the ASGI app with a real token for each role (and none); every
response must be documented: no 5xx, a documented status, content type and body schema
(problem+json errors included).

More examples: `FUZZ_EXAMPLES=500 uv run pytest tests/e2e/test_fuzz.py` (default 10 each).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.main import create_app
from app.modules.auth.contracts import TokenClaims
from tests.conftest import (
    ACME_ID,
    ADMIN_ID,
    MODERATOR_ID,
    TEST_SECRET,
    USER_ID,
    make_settings,
    serve,
)

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))
ROLES = {"USER": USER_ID, "MODERATOR": MODERATOR_ID, "ADMIN": ADMIN_ID}


def not_a_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    assert response.status_code < 500, f"{response.status_code}: {response.text[:300]}"
    return None


class Harness:
    """The app started in an event loop of its own, and a client calling it in that loop."""

    def __init__(self, database: Path) -> None:
        self.runner = asyncio.Runner()
        self.app = create_app(
            make_settings(
                database,
                rate_limit_per_minute=0,
                login_failures_per_15min=0,
                login_concurrency_per_client=0,
            )
        )
        self._served: AbstractAsyncContextManager[httpx.AsyncClient] = serve(self.app)
        self.client = self.runner.run(self._served.__aenter__())

    def request(self, kwargs: dict[str, Any]) -> httpx.Response:
        return self.runner.run(self.client.request(**kwargs))

    def close(self) -> None:
        self.runner.run(self._served.__aexit__(None, None, None))
        self.runner.close()


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    harness = Harness(tmp_path_factory.mktemp("fuzz") / "fuzz.db")
    yield harness
    harness.close()


def _schema() -> Any:
    """The documented schema, from an app that is never started (the schema needs no database)."""
    app = create_app(make_settings(Path(tempfile.gettempdir()) / "eventboard-schema.db"))
    return schemathesis.openapi.from_dict(app.openapi_schema.to_schema()).exclude(
        path_regex="^/metrics$"
    )


schema = _schema()


def token(role: str) -> str:
    import time
    import uuid

    import jwt
    import msgspec

    now = int(time.time())
    claims = TokenClaims(
        sub=ROLES[role],
        email=f"{role.lower()}@acme.com",
        role=role,  # type: ignore[arg-type]
        organization_id=ACME_ID,
        iat=now,
        exp=now + 3600,
        jti=str(uuid.uuid4()),
    )
    return jwt.encode(msgspec.to_builtins(claims), TEST_SECRET, algorithm="HS256")


@schema.parametrize()  # type: ignore[untyped-decorator]  # schemathesis is untyped here
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_response_is_documented(case: Any, harness: Harness) -> None:
    """Each generated request is sent anonymously and as each role."""
    for role in ("anonymous", *ROLES):
        headers = {} if role == "anonymous" else {"Authorization": f"Bearer {token(role)}"}
        kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
        request: dict[str, Any] = {
            key: kwargs[key] for key in ("method", "url", "headers", "params") if key in kwargs
        }
        if "json" in kwargs:
            request["json"] = kwargs["json"]
        elif kwargs.get("data") is not None:
            request["content"] = kwargs["data"]
        response = harness.request(request)

        case.validate_response(
            response,
            checks=[
                not_a_server_error,
                status_code_conformance,
                content_type_conformance,
                response_schema_conformance,
            ],
        )
