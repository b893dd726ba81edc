"""The seeds' own manual tests, end to end: the demo flow and the critical flow."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from litestar import Litestar

from tests.conftest import ACME_ID, both_databases, both_transports, client_at, login, new_event

Client = httpx.AsyncClient

db_backend = both_databases  # these tests run on SQLite and on PostgreSQL
bus_mode = both_transports  # and in process and over NATS (gateway + workers)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_seed_demo_flow(client: Client):
    admin = bearer(await login(client, "admin@acme.com"))

    created = await client.post(
        "/events",
        json=new_event(title="Product Launch", description="Launch of our newest product line."),
        headers=admin,
    )
    assert created.status_code == 201
    event_id = created.json()["id"]

    page = await client.get("/events?page=1&limit=10", headers=admin)
    assert page.status_code == 200
    assert event_id in [e["id"] for e in page.json()["data"]]
    assert page.json()["meta"]["page"] == 1 and page.json()["meta"]["limit"] == 10

    updated = await client.patch(
        f"/events/{event_id}", json={"location": "Main Hall"}, headers=admin
    )
    assert updated.status_code == 200 and updated.json()["location"] == "Main Hall"

    submitted = await client.post(f"/events/{event_id}/submit", headers=admin)
    assert submitted.status_code == 200 and submitted.json()["status"] == "SUBMITTED"

    moderator = bearer(await login(client, "moderator@acme.com"))
    approved = await client.post(f"/events/{event_id}/approve", headers=moderator)
    assert approved.status_code == 200 and approved.json()["status"] == "APPROVED"

    user = bearer(await login(client, "user@acme.com"))
    assert (await client.post(f"/events/{event_id}/approve", headers=user)).status_code == 403

    approved_only = await client.get("/events?status=APPROVED", headers=admin)
    assert {e["status"] for e in approved_only.json()["data"]} == {"APPROVED"}
    assert event_id in [e["id"] for e in approved_only.json()["data"]]
    found = await client.get("/events?search=product", headers=admin)
    assert [e["id"] for e in found.json()["data"]] == [event_id]


async def test_seed_critical_flow(client: Client):
    signup = await client.post(
        "/auth/signup",
        json={
            "email": "critical@acme.com",
            "password": "Critical123!",
            "firstName": "Crit",
            "lastName": "Ical",
            "organizationId": ACME_ID,
        },
    )
    assert signup.status_code == 201
    user = bearer(signup.json()["accessToken"])

    event_id = (await client.post("/events", json=new_event(), headers=user)).json()["id"]
    assert (await client.post(f"/events/{event_id}/submit", headers=user)).status_code == 200
    twice = await client.post(f"/events/{event_id}/submit", headers=user)
    assert twice.status_code == 409
    assert (await client.post(f"/events/{event_id}/approve", headers=user)).status_code == 403

    moderator = bearer(await login(client, "moderator@acme.com"))
    approved = await client.post(f"/events/{event_id}/approve", headers=moderator)
    assert approved.status_code == 200 and approved.json()["status"] == "APPROVED"

    rejected_id = (await client.post("/events", json=new_event(), headers=user)).json()["id"]
    await client.post(f"/events/{rejected_id}/submit", headers=user)
    rejected = await client.post(
        f"/events/{rejected_id}/reject",
        json={"reason": "Overlaps with the all-hands."},
        headers=moderator,
    )
    assert rejected.status_code == 200
    assert rejected.json()["status"] == "REJECTED"
    assert rejected.json()["rejectionReason"] == "Overlaps with the all-hands."

    draft_id = (await client.post("/events", json=new_event(), headers=user)).json()["id"]
    assert (
        await client.delete(f"/events/{approved.json()['id']}", headers=user)
    ).status_code == 403
    assert (await client.delete(f"/events/{draft_id}", headers=moderator)).status_code == 403
    assert (await client.delete(f"/events/{draft_id}", headers=user)).status_code == 204


async def test_concurrent_submits_change_state_once(client: Client):
    user = bearer(await login(client, "user@acme.com"))
    event_id = (await client.post("/events", json=new_event(), headers=user)).json()["id"]

    responses = await asyncio.gather(
        *(client.post(f"/events/{event_id}/submit", headers=user) for _ in range(8))
    )

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [409] * 7


async def test_concurrent_approve_and_reject_leave_one_outcome(client: Client):
    moderator = bearer(await login(client, "moderator@acme.com"))
    admin = bearer(await login(client, "admin@acme.com"))
    user = bearer(await login(client, "user@acme.com"))
    event_id = (await client.post("/events", json=new_event(), headers=user)).json()["id"]
    await client.post(f"/events/{event_id}/submit", headers=user)

    approve, reject = await asyncio.gather(
        client.post(f"/events/{event_id}/approve", headers=moderator),
        client.post(
            f"/events/{event_id}/reject", json={"reason": "Changed our minds."}, headers=admin
        ),
    )

    assert sorted((approve.status_code, reject.status_code)) == [200, 409]
    final = (await client.get(f"/events/{event_id}", headers=admin)).json()
    winner = approve if approve.status_code == 200 else reject
    assert final["status"] == winner.json()["status"]


async def racing(app: Litestar, requests: list[tuple[str, dict[str, object]]]) -> list[Any]:
    """POST each (path, body) at once, each from a client of its own, as racing users would."""
    clients = [client_at(app, f"192.0.2.{n + 1}") for n in range(len(requests))]
    try:
        return await asyncio.gather(
            *(c.post(path, json=body) for c, (path, body) in zip(clients, requests, strict=True))
        )
    finally:
        for c in clients:
            await c.aclose()


async def test_concurrent_signups_with_one_email_create_one_user(client: Client, app: Litestar):
    body: dict[str, object] = {
        "email": "race@acme.com",
        "password": "Racing123!",
        "firstName": "Race",
        "lastName": "Condition",
        "organizationId": ACME_ID,
    }

    responses = await racing(app, [("/auth/signup", body)] * 6)

    assert sorted(r.status_code for r in responses) == [201] + [409] * 5
    assert (
        await client.post(
            "/auth/login", json={"email": body["email"], "password": body["password"]}
        )
    ).status_code == 200


async def test_concurrent_org_creation_with_one_name_creates_one_org(app: Litestar, client: Client):
    def body(n: int) -> dict[str, object]:
        return {
            "email": f"founder{n}@newco.com",
            "password": "Founder123!",
            "firstName": "Found",
            "lastName": "Er",
            "organizationName": "NewCo",
        }

    responses = await racing(app, [("/auth/signup", body(n)) for n in range(5)])

    assert sorted(r.status_code for r in responses) == [201] + [409] * 4
