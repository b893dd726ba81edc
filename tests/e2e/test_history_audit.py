"""History and audit over HTTP, as API.md's "History and audit" says: an event's history written
with each change, and the organization's audit log fed by the modules' notifications. On the
default stack in process; with TEST_STACK=postgresql-nats, over JetStream to a worker's audit
consumer."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from tests.conftest import PASSWORD, new_event

Headers = dict[str, str]


async def audit_until(
    client: httpx.AsyncClient, headers: Headers, count: int, query: str = ""
) -> list[dict[str, Any]]:
    """The audit log once it holds `count` entries (for the query): it is fed after commit,
    usually within a second; at most 10 s."""
    for _ in range(200):
        response = await client.get(f"/organization/audit?limit=100{query}", headers=headers)
        assert response.status_code == 200, response.text
        entries: list[dict[str, Any]] = response.json()["data"]
        if len(entries) >= count:
            return entries
        await asyncio.sleep(0.05)
    raise AssertionError(f"the audit log has {len(entries)} of {count} entries after 10 s")


async def founded(client: httpx.AsyncClient) -> tuple[Headers, dict[str, Any]]:
    """A new organization of the test's own (its audit log starts empty) and its ADMIN."""
    email = f"founder-{uuid.uuid4().hex[:8]}@example.com"
    response = await client.post(
        "/auth/signup",
        json={
            "email": email,
            "password": PASSWORD,
            "firstName": "Ada",
            "lastName": "Founder",
            "organizationName": f"Org {uuid.uuid4().hex[:8]}",
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return {"Authorization": f"Bearer {body['accessToken']}"}, body["user"]


async def test_an_approval_is_in_the_events_history_and_the_audit_log(
    client: httpx.AsyncClient, auth: dict[str, Headers]
):
    admin, founder = await founded(client)
    created = await client.post("/events", json=new_event(), headers=admin)
    event_id = created.json()["id"]
    await client.post(f"/events/{event_id}/submit", headers=admin)
    approved = await client.post(
        f"/events/{event_id}/approve", headers={**admin, "X-Correlation-ID": "approval-1"}
    )
    history = await client.get(f"/events/{event_id}/history", headers=admin)
    audit = await audit_until(client, admin, 5)

    assert approved.status_code == 200
    assert history.status_code == 200
    entries = history.json()["data"]
    assert [e["action"] for e in entries] == ["event.created", "event.submitted", "event.approved"]
    approval = entries[-1]
    assert approval == {
        "id": approval["id"],
        "action": "event.approved",
        "subjectType": "event",
        "subjectId": event_id,
        "actorId": founder["id"],
        "actorRole": "ADMIN",
        "fromStatus": "SUBMITTED",
        "toStatus": "APPROVED",
        "changes": None,
        "reason": None,
        "correlationId": "approval-1",
        "at": approval["at"],
    }
    # Newest first; the founding is audited too; an entry is its history entry, the same id.
    assert [e["action"] for e in audit] == [
        "event.approved",
        "event.submitted",
        "event.created",
        "member.joined",
        "organization.created",
    ]
    assert audit[0] == approval
    assert audit[3]["subjectId"] == founder["id"]
    assert audit[4]["subjectId"] == founder["organizationId"]


async def test_updates_record_what_changed_and_rejections_their_reason(
    client: httpx.AsyncClient, auth: dict[str, Headers]
):
    created = await client.post("/events", json=new_event(), headers=auth["user"])
    event_id = created.json()["id"]
    await client.patch(
        f"/events/{event_id}",
        json={"title": "Quarterly Planning, day two", "location": None},
        headers=auth["user"],
    )
    await client.post(f"/events/{event_id}/submit", headers=auth["user"])
    reason = "The date clashes with the audit."
    await client.post(
        f"/events/{event_id}/reject", json={"reason": reason}, headers=auth["moderator"]
    )
    history = (await client.get(f"/events/{event_id}/history", headers=auth["user"])).json()

    update, rejection = history["data"][1], history["data"][3]
    assert update["action"] == "event.updated"
    assert update["changes"] == {
        "title": {"from": "Quarterly Planning", "to": "Quarterly Planning, day two"},
        "location": {"from": "Room 4", "to": None},
    }
    assert rejection["action"] == "event.rejected"
    assert rejection["reason"] == reason
    assert (rejection["actorRole"], rejection["toStatus"]) == ("MODERATOR", "REJECTED")


async def test_history_is_for_whoever_may_read_the_event(
    client: httpx.AsyncClient, auth: dict[str, Headers]
):
    created = await client.post("/events", json=new_event(), headers=auth["admin"])
    event_id = created.json()["id"]

    other_user = await client.get(f"/events/{event_id}/history", headers=auth["user"])
    other_org = await client.get(f"/events/{event_id}/history", headers=auth["tech"])
    moderator = await client.get(f"/events/{event_id}/history", headers=auth["moderator"])

    assert other_user.status_code == 403
    assert other_org.status_code == 404
    assert moderator.status_code == 200


async def test_a_deleted_events_entries_stay_in_the_audit_log(client: httpx.AsyncClient):
    admin, _ = await founded(client)
    created = await client.post("/events", json=new_event(), headers=admin)
    event_id = created.json()["id"]
    deleted = await client.delete(f"/events/{event_id}", headers=admin)
    history = await client.get(f"/events/{event_id}/history", headers=admin)
    audit = await audit_until(client, admin, 2, f"&subjectId={event_id}")

    assert deleted.status_code == 204
    assert history.status_code == 404
    assert [(e["action"], e["fromStatus"], e["toStatus"]) for e in audit] == [
        ("event.deleted", "DRAFT", None),
        ("event.created", None, "DRAFT"),
    ]


async def test_member_changes_are_audited(client: httpx.AsyncClient):
    admin, founder = await founded(client)
    joined = await client.post(
        "/auth/signup",
        json={
            "email": f"member-{uuid.uuid4().hex[:8]}@example.com",
            "password": PASSWORD,
            "firstName": "Grace",
            "lastName": "Member",
            "organizationId": founder["organizationId"],
        },
    )
    member = joined.json()["user"]["id"]
    await client.patch(f"/organization/members/{member}", json={"role": "MODERATOR"}, headers=admin)
    await client.post(f"/organization/members/{member}/deactivate", headers=admin)
    await client.post(f"/organization/members/{member}/reactivate", headers=admin)
    audit = await audit_until(client, admin, 4, f"&subjectId={member}")

    assert [(e["action"], e["actorId"], e["changes"]) for e in audit] == [
        ("member.reactivated", founder["id"], {"active": {"from": False, "to": True}}),
        ("member.deactivated", founder["id"], {"active": {"from": True, "to": False}}),
        ("member.role_changed", founder["id"], {"role": {"from": "USER", "to": "MODERATOR"}}),
        ("member.joined", member, {"role": {"from": None, "to": "USER"}}),
    ]


async def test_the_audit_log_is_for_admins_filtered_and_paged(
    client: httpx.AsyncClient, auth: dict[str, Headers]
):
    admin, founder = await founded(client)
    for number in range(3):
        await client.post("/events", json=new_event(title=f"Event {number}"), headers=admin)
    everything = await audit_until(client, admin, 5)
    created = await client.get("/organization/audit?action=event.created&limit=2", headers=admin)
    second = await client.get(
        "/organization/audit?action=event.created&limit=2&page=2", headers=admin
    )
    newest = everything[0]["at"]
    since = await client.get(
        "/organization/audit", params={"from": newest, "actorId": founder["id"]}, headers=admin
    )
    moderator = await client.get("/organization/audit", headers=auth["moderator"])
    acme = await client.get("/organization/audit?limit=100", headers=auth["admin"])
    bad = await client.get("/organization/audit?action=event.exploded", headers=admin)

    assert created.json()["meta"]["total"] == 3
    assert len(created.json()["data"]) == 2 and len(second.json()["data"]) == 1
    assert [e["at"] for e in since.json()["data"]] == [newest]
    assert moderator.status_code == 403
    assert all(e["subjectId"] != founder["id"] for e in acme.json()["data"])  # tenant scope
    assert bad.status_code == 400


async def test_concurrent_changes_appear_exactly_once(client: httpx.AsyncClient):
    """Many changes at once: every committed change has one history entry and one audit entry,
    the same one, and nothing else is there."""
    admin, _ = await founded(client)

    async def lifecycle(number: int) -> str:
        created = await client.post(
            "/events", json=new_event(title=f"Concurrent {number}"), headers=admin
        )
        event_id: str = created.json()["id"]
        await client.post(f"/events/{event_id}/submit", headers=admin)
        await client.post(f"/events/{event_id}/approve", headers=admin)
        return event_id

    ids = await asyncio.gather(*(lifecycle(n) for n in range(12)))
    histories = await asyncio.gather(
        *(client.get(f"/events/{event_id}/history", headers=admin) for event_id in ids)
    )
    history_ids = [e["id"] for h in histories for e in h.json()["data"]]
    audit = await audit_until(client, admin, 2 + 36)
    event_entries = [e["id"] for e in audit if e["subjectType"] == "event"]

    assert len(history_ids) == 36
    assert sorted(event_entries) == sorted(history_ids)
    assert len(set(event_entries)) == len(event_entries)
