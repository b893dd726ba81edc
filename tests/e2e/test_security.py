"""Security checks: tenant isolation on every operation, and hostile header values that never
reach a log or a response raw."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from app.main import create_app
from app.modules.auth.contracts import key_id
from tests.conftest import SUMMIT_ID, TEST_SECRET, login, make_settings, new_event, serve

Auth = dict[str, dict[str, str]]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"/events/{SUMMIT_ID}", None),
        ("PATCH", f"/events/{SUMMIT_ID}", {"title": "Taken over"}),
        ("DELETE", f"/events/{SUMMIT_ID}", None),
        ("POST", f"/events/{SUMMIT_ID}/submit", None),
        ("POST", f"/events/{SUMMIT_ID}/approve", None),
        ("POST", f"/events/{SUMMIT_ID}/reject", {"reason": "Not in my organization."}),
    ],
)
@pytest.mark.parametrize("who", ["user", "moderator", "admin"])
async def test_another_tenants_event_is_not_found_for_any_operation(
    client: httpx.AsyncClient, auth: Auth, method: str, path: str, body: Any, who: str
):
    response = await client.request(method, path, json=body, headers=auth[who])

    assert response.status_code in (403, 404)  # 403 only where the role alone forbids it
    if response.status_code == 403:
        assert response.json()["code"] == "INSUFFICIENT_ROLE"
    summit = await client.get(f"/events/{SUMMIT_ID}", headers=auth["tech"])
    assert summit.json()["status"] == "DRAFT"
    assert summit.json()["title"] == "Innovation Summit"


async def test_listing_and_search_never_leak_across_tenants(client: httpx.AsyncClient, auth: Auth):
    await client.post("/events", json=new_event(title="Tech secret plan"), headers=auth["tech"])

    for who in ("user", "moderator", "admin"):
        page = await client.get("/events?search=secret&limit=100", headers=auth[who])
        assert page.json()["data"] == []
        everything = await client.get("/events?limit=100", headers=auth[who])
        assert {e["organizationId"] for e in everything.json()["data"]} == {
            "10000000-0000-0000-0000-000000000001"
        }


async def raw_request(
    app: Any, path: str, headers: list[tuple[bytes, bytes]], body: bytes = b""
) -> tuple[int, dict[bytes, bytes], bytes]:
    """One request straight into the ASGI app, with header bytes no HTTP client would send."""
    sent: list[dict[str, Any]] = []
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST" if body else "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
        "state": {},
    }
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), payload


HOSTILE = [
    b"abc\r\nX-Injected: evil-zq1",
    b"abc\nX-Injected: evil-zq1",
    b"evil-zq1" + b"x" * 10_000,
    "caf\u00e9-evil-zq1".encode(),
    b"evil-zq1\x00nul",
]


@pytest.mark.parametrize("value", HOSTILE, ids=["crlf", "lf", "huge", "non-ascii", "nul"])
async def test_hostile_correlation_and_idempotency_headers_never_reach_a_log_or_response(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: bytes
):
    app = create_app(make_settings(tmp_path / "sec.db", log_format="json", log_level="DEBUG"))
    async with serve(app) as client:
        token = await login(client, "admin@acme.com")
        capsys.readouterr()
        live_status, live_headers, _ = await raw_request(
            app, "/health/live", [(b"x-correlation-id", value), (b"x-request-id", value)]
        )
        create_status, create_headers, create_body = await raw_request(
            app,
            "/events",
            [
                (b"authorization", f"Bearer {token}".encode()),
                (b"content-type", b"application/json"),
                (b"idempotency-key", value),
                (b"x-correlation-id", value),
            ],
            body=json.dumps(new_event()).encode(),
        )
        logged = capsys.readouterr().err

    assert live_status == 200
    replaced = live_headers[b"x-correlation-id"]
    assert len(replaced) == 36 and b"evil" not in replaced
    assert create_status == 400
    assert json.loads(create_body)["errors"][0]["field"] == "Idempotency-Key"
    assert b"evil" not in create_headers[b"x-correlation-id"]
    assert b"evil-zq1" not in create_body
    assert "evil-zq1" not in logged
    assert "X-Injected" not in logged


async def test_a_restart_with_a_rotated_secret_keeps_sessions_and_signs_with_the_new_key(
    database: Path,
):
    """The operator's rotation: JWT_SECRET gets a new value, the old one moves to
    JWT_PREVIOUS_SECRETS; tokens issued before the restart keep working until they expire."""
    old_secret, new_secret = TEST_SECRET, "the-rotated-secret-of-this-deployment-0123456789"
    async with serve(create_app(make_settings(database))) as before:
        old_token = await login(before, "admin@acme.com")
    rotated = make_settings(database, jwt_secret=new_secret, jwt_previous_secrets=(old_secret,))
    async with serve(create_app(rotated)) as after:
        kept = await after.get("/events", headers={"Authorization": f"Bearer {old_token}"})
        new_token = await login(after, "admin@acme.com")
    dropped = make_settings(database, jwt_secret=new_secret)  # once old tokens have expired
    async with serve(create_app(dropped)) as later:
        refused = await later.get("/events", headers={"Authorization": f"Bearer {old_token}"})
        current = await later.get("/events", headers={"Authorization": f"Bearer {new_token}"})

    assert kept.status_code == 200
    assert jwt.get_unverified_header(new_token)["kid"] == key_id(new_secret)
    assert refused.status_code == 401
    assert current.status_code == 200
