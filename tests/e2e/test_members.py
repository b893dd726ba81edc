"""The organization's admin console: members and roles, on SQLite and PostgreSQL (and, with
TEST_STACK=postgresql-nats, with the auth module in a worker over NATS)."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
from litestar import Litestar

from app.main import create_app
from app.settings import Settings
from tests.conftest import (
    ACME_ID,
    ADMIN_ID,
    MODERATOR_ID,
    TECH_USER_ID,
    USER_ID,
    WORKSHOP_ID,
    both_databases,
    new_event,
    serve,
)

Client = httpx.AsyncClient
Headers = dict[str, dict[str, str]]

db_backend = both_databases  # these tests run on SQLite and on PostgreSQL


async def test_any_member_sees_the_organization(client: Client, auth: Headers):
    seen = await client.get("/organization", headers=auth["user"])

    assert seen.status_code == 200
    body = seen.json()
    assert (body["id"], body["name"], body["slug"]) == (ACME_ID, "Acme Corporation", "acme-corp")
    assert body["memberCount"] == 3
    assert body["createdAt"].endswith("Z")


async def test_members_are_listed_for_moderators_and_admins_only(client: Client, auth: Headers):
    as_user = await client.get("/organization/members", headers=auth["user"])
    as_moderator = await client.get(
        "/organization/members?sortBy=email&sortOrder=desc", headers=auth["moderator"]
    )
    admins = await client.get("/organization/members?role=ADMIN", headers=auth["admin"])
    found = await client.get("/organization/members?search=MODERATOR", headers=auth["admin"])
    paged = await client.get("/organization/members?limit=2&page=2", headers=auth["admin"])
    unknown = await client.get("/organization/members?colour=red", headers=auth["admin"])

    assert as_user.status_code == 403
    assert as_moderator.status_code == 200
    emails = [m["email"] for m in as_moderator.json()["data"]]
    assert emails == ["user@acme.com", "moderator@acme.com", "admin@acme.com"]
    member = as_moderator.json()["data"][0]
    assert set(member) == {
        "id", "email", "firstName", "lastName", "role", "organizationId", "createdAt",
        "active", "updatedAt", "version",
    }  # fmt: skip
    assert "passwordHash" not in member and "password_hash" not in member
    assert [m["id"] for m in admins.json()["data"]] == [ADMIN_ID]
    assert [m["id"] for m in found.json()["data"]] == [MODERATOR_ID]
    assert paged.json()["meta"] == {
        "page": 2, "limit": 2, "total": 3, "totalPages": 2, "hasPrevious": True, "hasNext": False,
    }  # fmt: skip
    assert len(paged.json()["data"]) == 1
    assert unknown.status_code == 400


async def test_a_member_of_another_organization_is_not_found(client: Client, auth: Headers):
    read = await client.get(f"/organization/members/{TECH_USER_ID}", headers=auth["admin"])
    change = await client.patch(
        f"/organization/members/{TECH_USER_ID}", json={"role": "ADMIN"}, headers=auth["admin"]
    )
    lock_out = await client.post(
        f"/organization/members/{TECH_USER_ID}/deactivate", headers=auth["admin"]
    )
    tech_user = await client.get("/auth/me", headers=auth["tech"])

    assert (read.status_code, change.status_code, lock_out.status_code) == (404, 404, 404)
    assert read.json()["code"] == "MEMBER_NOT_FOUND"
    assert tech_user.json()["role"] == "USER"  # nothing changed over there


async def test_a_user_reads_only_themself_and_changes_nobody(client: Client, auth: Headers):
    themself = await client.get(f"/organization/members/{USER_ID}", headers=auth["user"])
    another = await client.get(f"/organization/members/{ADMIN_ID}", headers=auth["user"])
    promote = await client.patch(
        f"/organization/members/{USER_ID}", json={"role": "ADMIN"}, headers=auth["user"]
    )
    by_moderator = await client.patch(
        f"/organization/members/{USER_ID}", json={"role": "MODERATOR"}, headers=auth["moderator"]
    )

    assert themself.status_code == 200 and themself.json()["role"] == "USER"
    assert another.status_code == 403
    assert (promote.status_code, by_moderator.status_code) == (403, 403)


async def test_a_role_change_applies_to_the_members_next_request(client: Client, auth: Headers):
    """The demoted moderator's token still verifies, but acts as a USER: no approving; the
    promoted user's old token approves."""
    demoted = await client.patch(
        f"/organization/members/{MODERATOR_ID}", json={"role": "USER"}, headers=auth["admin"]
    )
    refused = await client.post(f"/events/{WORKSHOP_ID}/approve", headers=auth["moderator"])
    promoted = await client.patch(
        f"/organization/members/{USER_ID}", json={"role": "MODERATOR"}, headers=auth["admin"]
    )
    own = await client.post("/events", json=new_event(), headers=auth["user"])
    submitted = await client.post(f"/events/{own.json()['id']}/submit", headers=auth["user"])
    approved = await client.post(f"/events/{WORKSHOP_ID}/approve", headers=auth["user"])

    assert demoted.status_code == 200
    assert demoted.json()["role"] == "USER"
    assert demoted.json()["version"] == 2
    assert refused.status_code == 403
    assert promoted.json()["role"] == "MODERATOR"
    assert submitted.status_code == 200
    assert approved.status_code == 200 and approved.json()["status"] == "APPROVED"


async def test_a_deactivated_member_is_locked_out_until_reactivated(client: Client, auth: Headers):
    deactivated = await client.post(
        f"/organization/members/{USER_ID}/deactivate", headers=auth["admin"]
    )
    with_token = await client.get("/events", headers=auth["user"])
    log_in = await client.post(
        "/auth/login", json={"email": "user@acme.com", "password": "Password123!"}
    )
    again = await client.post(f"/organization/members/{USER_ID}/deactivate", headers=auth["admin"])
    listed = await client.get("/organization/members?active=false", headers=auth["admin"])
    reactivated = await client.post(
        f"/organization/members/{USER_ID}/reactivate", headers=auth["admin"]
    )
    twice = await client.post(f"/organization/members/{USER_ID}/reactivate", headers=auth["admin"])
    back = await client.get("/events", headers=auth["user"])
    events = await client.get("/events", headers=auth["admin"])

    assert deactivated.status_code == 200 and deactivated.json()["active"] is False
    assert with_token.status_code == 401
    assert with_token.headers["WWW-Authenticate"].startswith("Bearer")
    assert log_in.status_code == 401
    assert log_in.json()["detail"] == "Invalid credentials"  # as for a wrong password
    assert (again.status_code, again.json()["code"]) == (409, "MEMBER_INACTIVE")
    assert [m["id"] for m in listed.json()["data"]] == [USER_ID]
    assert reactivated.status_code == 200 and reactivated.json()["active"] is True
    assert (twice.status_code, twice.json()["code"]) == (409, "MEMBER_ACTIVE")
    assert back.status_code == 200
    assert WORKSHOP_ID in [e["id"] for e in events.json()["data"]]  # their events stayed


async def test_the_last_active_admin_can_be_neither_demoted_nor_deactivated(
    client: Client, auth: Headers
):
    demote = await client.patch(
        f"/organization/members/{ADMIN_ID}", json={"role": "USER"}, headers=auth["admin"]
    )
    deactivate = await client.post(
        f"/organization/members/{ADMIN_ID}/deactivate", headers=auth["admin"]
    )
    unchanged = await client.get(f"/organization/members/{ADMIN_ID}", headers=auth["admin"])

    assert (demote.status_code, demote.json()["code"]) == (409, "LAST_ADMIN")
    assert (deactivate.status_code, deactivate.json()["code"]) == (409, "LAST_ADMIN")
    assert unchanged.json()["role"] == "ADMIN" and unchanged.json()["active"] is True
    assert unchanged.json()["version"] == 1


async def test_two_admins_demoting_each_other_at_once_leave_one_admin(
    client: Client, auth: Headers
):
    """Ten rounds of a race: each time exactly one demotion wins. The other is refused with 409
    LAST_ADMIN when both reached the database as admins, or 403 when the winner's change had
    already made its sender a USER at the gateway (the race at the database itself, where the
    organization's lock decides, is tested on both databases in tests/modules/auth)."""
    tokens = {ADMIN_ID: auth["admin"], MODERATOR_ID: auth["moderator"]}
    for _ in range(10):
        promoted = await client.patch(
            f"/organization/members/{MODERATOR_ID}", json={"role": "ADMIN"}, headers=auth["admin"]
        )
        assert promoted.status_code == 200
        assert (await client.get("/organization", headers=auth["moderator"])).status_code == 200
        first, second = await asyncio.gather(
            client.patch(
                f"/organization/members/{MODERATOR_ID}",
                json={"role": "USER"},
                headers=auth["admin"],
            ),
            client.patch(
                f"/organization/members/{ADMIN_ID}",
                json={"role": "USER"},
                headers=auth["moderator"],
            ),
        )
        statuses = sorted((first.status_code, second.status_code))
        loser = first if first.status_code != 200 else second
        winner_id = ADMIN_ID if first.status_code == 200 else MODERATOR_ID
        admins = await client.get("/organization/members?role=ADMIN", headers=tokens[winner_id])
        assert statuses in ([200, 403], [200, 409]), (first.text, second.text)
        assert loser.json()["code"] in ("LAST_ADMIN", "INSUFFICIENT_ROLE")
        assert [m["id"] for m in admins.json()["data"]] == [winner_id]
        if winner_id == MODERATOR_ID:  # put the seeds' roles back for the next round
            for user_id, role in ((ADMIN_ID, "ADMIN"), (MODERATOR_ID, "MODERATOR")):
                restored = await client.patch(
                    f"/organization/members/{user_id}",
                    json={"role": role},
                    headers=tokens[MODERATOR_ID if role == "ADMIN" else ADMIN_ID],
                )
                assert restored.status_code == 200


async def test_a_keyed_role_change_is_made_once_and_replayed(client: Client, auth: Headers):
    headers = {**auth["admin"], "Idempotency-Key": str(uuid.uuid4())}
    body = {"role": "MODERATOR"}
    first = await client.patch(f"/organization/members/{USER_ID}", json=body, headers=headers)
    second = await client.patch(f"/organization/members/{USER_ID}", json=body, headers=headers)
    other = await client.patch(
        f"/organization/members/{USER_ID}", json={"role": "ADMIN"}, headers=headers
    )

    assert (first.status_code, second.status_code) == (200, 200)
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert first.json()["version"] == 2  # changed once
    assert other.status_code == 422


async def test_a_change_made_through_another_gateway_applies_within_5_s(
    app: Litestar, settings: Settings, client: Client, auth: Headers
):
    """Two gateways on one database: the one that did not make the change asks the auth module
    again within 5 s, and from then on the token acts with the new role."""
    async with serve(create_app(settings)) as other:
        before = await other.get("/organization/members", headers=auth["moderator"])
        demoted = await client.patch(
            f"/organization/members/{MODERATOR_ID}", json={"role": "USER"}, headers=auth["admin"]
        )
        began = time.perf_counter()
        while (
            await other.get("/organization/members", headers=auth["moderator"])
        ).status_code == 200:
            assert time.perf_counter() - began < 5.5, "still a moderator over there after 5 s"
            await asyncio.sleep(0.1)

    assert before.status_code == 200
    assert demoted.status_code == 200
