"""Idempotency-Key through the real HTTP app (API.md, "Idempotency")."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest

from app.main import create_app
from app.settings import Fault
from tests.conftest import (
    ACME_ID,
    WORKSHOP_ID,
    both_databases,
    both_transports,
    login,
    make_settings,
    new_event,
    serve,
)

Client = httpx.AsyncClient
Auth = dict[str, dict[str, str]]

db_backend = both_databases  # these tests run on SQLite and on PostgreSQL
bus_mode = both_transports  # and in process and over NATS (gateway + workers)


def keyed(headers: dict[str, str], key: str | None = None) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key or str(uuid.uuid4())}


async def titles(client: Client, auth: Auth) -> list[str]:
    page = await client.get("/events?limit=100", headers=auth["admin"])
    return [e["title"] for e in page.json()["data"]]


async def test_create_twice_with_one_key_creates_once_and_replays_identically(
    client: Client, auth: Auth
):
    headers = keyed(auth["admin"])
    body = new_event(title="Created once")

    first = await client.post("/events", json=body, headers=headers)
    second = await client.post("/events", json=body, headers=headers)

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    assert (await titles(client, auth)).count("Created once") == 1


async def test_the_seeds_workflow_checks_submit_approve_reject_twice(client: Client, auth: Auth):
    user, moderator = auth["user"], auth["moderator"]
    approved_id = (await client.post("/events", json=new_event(), headers=user)).json()["id"]
    rejected_id = (await client.post("/events", json=new_event(), headers=user)).json()["id"]

    for event_id in (approved_id, rejected_id):
        headers = keyed(user)
        submits = [await client.post(f"/events/{event_id}/submit", headers=headers) for _ in "12"]
        assert [r.status_code for r in submits] == [200, 200]
        assert submits[0].json() == submits[1].json()

    headers = keyed(moderator)
    approvals = [await client.post(f"/events/{approved_id}/approve", headers=headers) for _ in "12"]
    assert [r.status_code for r in approvals] == [200, 200]
    assert approvals[1].headers["idempotent-replayed"] == "true"
    assert approvals[0].json()["updatedAt"] == approvals[1].json()["updatedAt"]

    headers = keyed(moderator)
    reason = {"reason": "Overlaps with another event."}
    rejections = [
        await client.post(f"/events/{rejected_id}/reject", json=reason, headers=headers)
        for _ in "12"
    ]
    assert [r.status_code for r in rejections] == [200, 200]
    assert rejections[0].json() == rejections[1].json()

    # without a key the repeat is a real second attempt, and the workflow refuses it
    again = await client.post(f"/events/{approved_id}/approve", headers=moderator)
    assert again.status_code == 409


async def test_update_and_delete_replay_too(client: Client, auth: Auth):
    event_id = (await client.post("/events", json=new_event(), headers=auth["user"])).json()["id"]
    headers = keyed(auth["user"])
    patches = [
        await client.patch(f"/events/{event_id}", json={"title": "Patched"}, headers=headers)
        for _ in "12"
    ]
    assert patches[0].json() == patches[1].json()

    headers = keyed(auth["user"])
    deletes = [await client.delete(f"/events/{event_id}", headers=headers) for _ in "12"]
    assert [r.status_code for r in deletes] == [204, 204]
    assert deletes[1].headers["idempotent-replayed"] == "true"


async def test_signup_replays_to_the_identical_request_only(client: Client):
    body = {
        "email": "once@acme.com",
        "password": "OnlyOnce123!",
        "firstName": "Only",
        "lastName": "Once",
        "organizationId": ACME_ID,
    }
    headers = {"Idempotency-Key": "signup-key-1"}

    first = await client.post("/auth/signup", json=body, headers=headers)
    second = await client.post("/auth/signup", json=body, headers=headers)
    other = await client.post(
        "/auth/signup", json={**body, "email": "other@acme.com"}, headers=headers
    )

    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert other.status_code == 201  # another (anonymous) request: its own outcome
    assert other.json()["user"]["id"] != first.json()["user"]["id"]


async def test_the_same_key_from_two_users_never_collides(client: Client, auth: Auth):
    key = "shared-key"
    mine = await client.post(
        "/events", json=new_event(title="Mine"), headers=keyed(auth["user"], key)
    )
    theirs = await client.post(
        "/events", json=new_event(title="Mine"), headers=keyed(auth["admin"], key)
    )

    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert "idempotent-replayed" not in theirs.headers


async def test_same_key_with_another_request_is_422(client: Client, auth: Auth):
    headers = keyed(auth["admin"])
    await client.post("/events", json=new_event(title="First body"), headers=headers)

    other_body = await client.post("/events", json=new_event(title="Other body"), headers=headers)
    other_route = await client.post(f"/events/{WORKSHOP_ID}/approve", headers=headers)

    assert other_body.status_code == 422
    assert other_body.json()["code"] == "IDEMPOTENCY_KEY_MISMATCH"
    assert other_route.status_code == 200  # another route: another scope
    assert (await titles(client, auth)).count("Other body") == 0


async def test_key_order_and_whitespace_do_not_matter(client: Client, auth: Auth):
    headers = {**keyed(auth["admin"]), "Content-Type": "application/json"}
    compact = (
        b'{"title":"Same request","description":"Plan the next quarter together.",'
        b'"startDate":"2026-09-01T09:00:00.000Z","endDate":"2026-09-01T12:00:00.000Z"}'
    )
    spread = (
        b'{ "endDate": "2026-09-01T12:00:00.000Z",\n  "startDate": "2026-09-01T09:00:00.000Z",'
        b'\n  "description": "Plan the next quarter together.", "title": "Same request" }'
    )

    first = await client.post("/events", content=compact, headers=headers)
    second = await client.post("/events", content=spread, headers=headers)

    assert second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json()["id"] == first.json()["id"]


async def test_domain_refusals_are_stored_and_replayed(client: Client, auth: Auth):
    headers = keyed(auth["user"])
    missing = "00000000-0000-0000-0000-00000000beef"

    first = await client.post(f"/events/{missing}/submit", headers=headers)
    second = await client.post(f"/events/{missing}/submit", headers=headers)

    assert first.status_code == second.status_code == 404
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json()["code"] == first.json()["code"] == "EVENT_NOT_FOUND"


async def test_validation_failures_are_not_stored(client: Client, auth: Auth):
    headers = keyed(auth["admin"])

    bad = await client.post(
        "/events", json=new_event(endDate="2026-08-01T00:00:00Z"), headers=headers
    )
    good = await client.post("/events", json=new_event(title="Fixed body"), headers=headers)

    assert bad.status_code == 400
    assert good.status_code == 201
    assert "idempotent-replayed" not in good.headers


@pytest.mark.parametrize(
    "key",
    [b"", b"x" * 256, "caf\u00e9".encode(), b"tab\there", b"bell\x07"],
    ids=["empty", "256", "non-ascii", "tab", "control"],
)
async def test_malformed_keys_are_400(client: Client, auth: Auth, key: bytes):
    headers = {name.encode(): value.encode() for name, value in auth["admin"].items()}
    response = await client.post(
        "/events", json=new_event(), headers={**headers, b"Idempotency-Key": key}
    )

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "field": "Idempotency-Key",
            "message": "Idempotency-Key must be 1-255 printable ASCII characters",
        }
    ]


async def test_fifty_concurrent_identical_requests_create_exactly_one_event(
    client: Client, auth: Auth
):
    for round_number in range(5):
        title = f"Concurrent {round_number}"
        headers = keyed(auth["admin"])

        responses = await asyncio.gather(
            *(
                client.post("/events", json=new_event(title=title), headers=headers)
                for _ in range(50)
            )
        )

        created = [r for r in responses if r.status_code == 201]
        assert {r.status_code for r in responses} <= {201, 409}
        assert len({r.json()["id"] for r in created}) == 1
        assert sum("idempotent-replayed" not in r.headers for r in created) == 1
        in_flight = [r for r in responses if r.status_code == 409]
        assert all(r.json()["code"] == "IDEMPOTENCY_KEY_IN_FLIGHT" for r in in_flight)
        assert all("retry-after" in r.headers for r in in_flight)
        assert (await titles(client, auth)).count(title) == 1


async def test_a_duplicate_of_a_running_request_is_409_with_retry_after(tmp_path: Path):
    settings = make_settings(
        tmp_path / "slow.db", bus_faults=(Fault(cmd="events.create", delay_ms=1500),)
    )
    async with serve(create_app(settings)) as client:
        headers = keyed({"Authorization": f"Bearer {await login(client, 'admin@acme.com')}"})
        # Whichever claims the key first runs for 1.5 s; the other arrives while it runs.
        responses = await asyncio.gather(
            *(client.post("/events", json=new_event(), headers=headers) for _ in range(2))
        )

    original = [r for r in responses if r.status_code == 201]
    duplicate = [r for r in responses if r.status_code == 409]
    assert len(original) == len(duplicate) == 1
    assert duplicate[0].json()["code"] == "IDEMPOTENCY_KEY_IN_FLIGHT"
    assert int(duplicate[0].headers["retry-after"]) >= 1


async def test_replays_survive_a_restart(tmp_path: Path):
    database = tmp_path / "restart.db"
    async with serve(create_app(make_settings(database))) as client:
        headers = keyed({"Authorization": f"Bearer {await login(client, 'admin@acme.com')}"})
        first = await client.post(
            "/events", json=new_event(title="Before restart"), headers=headers
        )

    async with serve(create_app(make_settings(database))) as client:
        again = await client.post(
            "/events", json=new_event(title="Before restart"), headers=headers
        )
        admin = {"Authorization": headers["Authorization"]}
        page = await client.get("/events?search=Before%20restart", headers=admin)

    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert page.json()["meta"]["total"] == 1
