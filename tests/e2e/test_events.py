"""Events routes through the real HTTP app: every route, permission and error status."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import (
    ACME_ID,
    ADMIN_ID,
    CONFERENCE_ID,
    MODERATOR_ID,
    SUMMIT_ID,
    USER_ID,
    WORKSHOP_ID,
    new_event,
)

Client = httpx.AsyncClient
Auth = dict[str, dict[str, str]]


async def create(client: Client, headers: dict[str, str], **fields: object) -> dict[str, object]:
    response = await client.post("/events", json=new_event(**fields), headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def submitted(client: Client, auth: Auth, who: str = "user") -> str:
    event_id = str((await create(client, auth[who]))["id"])
    response = await client.post(f"/events/{event_id}/submit", headers=auth[who])
    assert response.status_code == 200, response.text
    return event_id


# Create


async def test_create_makes_a_draft_owned_by_the_caller_in_their_org(client: Client, auth: Auth):
    event = await create(client, auth["moderator"], location=None)

    assert event["status"] == "DRAFT"
    assert event["organizationId"] == ACME_ID
    assert event["createdById"] == MODERATOR_ID
    assert event["location"] is None
    assert event["rejectionReason"] is None
    assert event["version"] == 1
    assert set(event) == {
        "id", "title", "description", "location", "startDate", "endDate", "status",
        "rejectionReason", "organizationId", "createdById", "createdAt", "updatedAt",
        "version",  # beyond the contract's fields: the ETag's value (docs/api.md, notes)
    }  # fmt: skip
    fetched = await client.get(f"/events/{event['id']}", headers=auth["moderator"])
    assert fetched.json() == event


async def test_create_stores_times_in_utc_with_milliseconds(client: Client, auth: Auth):
    event = await create(
        client,
        auth["user"],
        startDate="2026-09-01T11:30:00.123456+02:00",
        endDate="2026-09-01T14:00:00-05:00",
    )

    assert event["startDate"] == "2026-09-01T09:30:00.123Z"
    assert event["endDate"] == "2026-09-01T19:00:00.000Z"
    assert str(event["createdAt"]).endswith("Z")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"title": "ab"}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": "   "}, "title"),  # trimmed first: whitespace alone is empty
        ({"title": " ab\u00a0\t"}, "title"),
        ({"description": "  short   \n   "}, "description"),
        ({"description": "too short"}, "description"),
        ({"location": "x" * 201}, "location"),
        ({"startDate": "2026-09-01T09:00:00"}, "startDate"),
        ({"startDate": "next tuesday"}, "startDate"),
        ({"endDate": 12}, "endDate"),
        ({"title": None}, "title"),
        ({"status": "APPROVED"}, "status"),
        ({"organizationId": "someone-else"}, "organizationId"),
    ],
)
async def test_create_rejects_invalid_fields(client: Client, auth: Auth, fields, field):
    response = await client.post("/events", json=new_event(**fields), headers=auth["user"])

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "VALIDATION_FAILED"
    assert [e["field"] for e in body["errors"]] == [field]


async def test_text_is_stored_trimmed_and_counted_after_trimming(client: Client, auth: Auth):
    title = "  " + "T" * 200 + "\n"  # 203 characters as sent, 200 once trimmed
    event = await create(
        client,
        auth["user"],
        title=title,
        description="\u3000 Ten chars! \t",
        location="  Room 1  ",
    )

    assert (event["title"], event["description"], event["location"]) == (
        "T" * 200,
        "Ten chars!",
        "Room 1",
    )
    patched = await client.patch(
        f"/events/{event['id']}", json={"title": "  New title "}, headers=auth["user"]
    )
    assert patched.json()["title"] == "New title"


async def test_create_with_missing_fields_lists_each(client: Client, auth: Auth):
    response = await client.post("/events", json={"title": "Only a title"}, headers=auth["user"])

    assert response.status_code == 400
    assert {e["field"] for e in response.json()["errors"]} == {
        "description",
        "startDate",
        "endDate",
    }


@pytest.mark.parametrize("end", ["2026-09-01T09:00:00.000Z", "2026-08-31T09:00:00.000Z"])
async def test_end_date_must_be_after_start_date(client: Client, auth: Auth, end):
    response = await client.post("/events", json=new_event(endDate=end), headers=auth["user"])

    assert response.status_code == 400
    assert response.json()["detail"] == "End date must be after start date"
    assert response.json()["errors"] == [
        {"field": "endDate", "message": "End date must be after start date"}
    ]


# Read


async def test_get_own_event_and_seeded_event(client: Client, auth: Auth):
    response = await client.get(f"/events/{WORKSHOP_ID}", headers=auth["user"])

    assert response.status_code == 200
    assert response.json()["title"] == "Team Building Workshop"
    assert response.json()["status"] == "SUBMITTED"


async def test_user_reading_another_users_event_in_same_org_is_403(client: Client, auth: Auth):
    response = await client.get(f"/events/{CONFERENCE_ID}", headers=auth["user"])

    assert response.status_code == 403
    assert response.json()["code"] == "NOT_EVENT_OWNER"


@pytest.mark.parametrize("who", ["user", "moderator", "admin"])
async def test_other_tenants_event_is_404_for_every_role(client: Client, auth: Auth, who):
    response = await client.get(f"/events/{SUMMIT_ID}", headers=auth[who])

    assert response.status_code == 404
    assert response.json()["detail"] == "Event not found"
    assert response.json()["code"] == "EVENT_NOT_FOUND"


async def test_unknown_event_id_is_404(client: Client, auth: Auth):
    for event_id in ("00000000-0000-0000-0000-00000000ffff", "not-a-uuid"):
        response = await client.get(f"/events/{event_id}", headers=auth["admin"])
        assert response.status_code == 404


# Update


async def test_user_updates_own_draft_and_only_given_fields_change(client: Client, auth: Auth):
    event = await create(client, auth["user"])

    response = await client.patch(
        f"/events/{event['id']}", json={"title": "Renamed Planning"}, headers=auth["user"]
    )

    assert response.status_code == 200
    updated = response.json()
    assert updated["title"] == "Renamed Planning"
    assert updated["description"] == event["description"]
    assert updated["status"] == "DRAFT"
    assert updated["updatedAt"] >= event["updatedAt"]


async def test_patch_with_null_location_clears_it(client: Client, auth: Auth):
    event = await create(client, auth["user"])

    response = await client.patch(
        f"/events/{event['id']}", json={"location": None}, headers=auth["user"]
    )

    assert response.status_code == 200
    assert response.json()["location"] is None


async def test_user_cannot_update_own_submitted_event(client: Client, auth: Auth):
    response = await client.patch(
        f"/events/{WORKSHOP_ID}", json={"title": "Sneaky"}, headers=auth["user"]
    )

    assert response.status_code == 403
    assert response.json()["code"] == "EVENT_NOT_EDITABLE"


async def test_user_cannot_update_someone_elses_event(client: Client, auth: Auth):
    draft = await create(client, auth["admin"])

    response = await client.patch(
        f"/events/{draft['id']}", json={"title": "Mine now"}, headers=auth["user"]
    )

    assert response.status_code == 403
    assert response.json()["code"] == "NOT_EVENT_OWNER"


@pytest.mark.parametrize("who", ["moderator", "admin"])
async def test_moderator_and_admin_update_any_org_event_without_changing_status(
    client: Client, auth: Auth, who
):
    response = await client.patch(
        f"/events/{CONFERENCE_ID}", json={"location": "Oakland, CA"}, headers=auth[who]
    )

    assert response.status_code == 200
    assert response.json()["location"] == "Oakland, CA"
    assert response.json()["status"] == "APPROVED"


async def test_patch_cannot_change_status(client: Client, auth: Auth):
    event = await create(client, auth["admin"])

    response = await client.patch(
        f"/events/{event['id']}", json={"status": "APPROVED"}, headers=auth["admin"]
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "status"


async def test_update_checks_dates_on_the_merged_values(client: Client, auth: Auth):
    event = await create(client, auth["user"])

    response = await client.patch(
        f"/events/{event['id']}", json={"startDate": "2026-09-02T00:00:00Z"}, headers=auth["user"]
    )

    assert response.status_code == 400
    assert response.json()["detail"] == "End date must be after start date"


async def test_update_of_another_tenants_event_is_404(client: Client, auth: Auth):
    response = await client.patch(
        f"/events/{SUMMIT_ID}", json={"title": "Hijack"}, headers=auth["admin"]
    )

    assert response.status_code == 404


# Delete


async def test_user_deletes_own_draft(client: Client, auth: Auth):
    event = await create(client, auth["user"])

    response = await client.delete(f"/events/{event['id']}", headers=auth["user"])

    assert response.status_code == 204
    assert response.content == b""
    again = await client.get(f"/events/{event['id']}", headers=auth["user"])
    assert again.status_code == 404


async def test_user_cannot_delete_own_submitted_event(client: Client, auth: Auth):
    response = await client.delete(f"/events/{WORKSHOP_ID}", headers=auth["user"])

    assert response.status_code == 403


async def test_user_cannot_delete_another_users_draft(client: Client, auth: Auth):
    draft = await create(client, auth["admin"])

    response = await client.delete(f"/events/{draft['id']}", headers=auth["user"])

    assert response.status_code == 403


async def test_moderators_cannot_delete_events(client: Client, auth: Auth):
    draft = await create(client, auth["moderator"])

    response = await client.delete(f"/events/{draft['id']}", headers=auth["moderator"])

    assert response.status_code == 403
    assert response.json()["detail"] == "Moderators cannot delete events"


async def test_admin_deletes_any_event_in_org(client: Client, auth: Auth):
    response = await client.delete(f"/events/{WORKSHOP_ID}", headers=auth["admin"])

    assert response.status_code == 204


async def test_admin_cannot_delete_another_tenants_event(client: Client, auth: Auth):
    response = await client.delete(f"/events/{SUMMIT_ID}", headers=auth["admin"])

    assert response.status_code == 404
    tech_view = await client.get(f"/events/{SUMMIT_ID}", headers=auth["tech"])
    assert tech_view.status_code == 200


# Workflow


async def test_creator_submits_draft(client: Client, auth: Auth):
    event = await create(client, auth["user"])

    response = await client.post(f"/events/{event['id']}/submit", headers=auth["user"])

    assert response.status_code == 200
    assert response.json()["status"] == "SUBMITTED"
    assert response.json()["rejectionReason"] is None


async def test_submitting_twice_is_409_with_the_seed_message(client: Client, auth: Auth):
    event_id = await submitted(client, auth)

    response = await client.post(f"/events/{event_id}/submit", headers=auth["user"])

    assert response.status_code == 409
    assert response.json()["code"] == "INVALID_TRANSITION"
    assert response.json()["detail"] == (
        "Cannot submit event with status SUBMITTED. Only DRAFT events can be submitted."
    )


async def test_only_the_creator_submits(client: Client, auth: Auth):
    event = await create(client, auth["user"])

    response = await client.post(f"/events/{event['id']}/submit", headers=auth["admin"])

    assert response.status_code == 403


@pytest.mark.parametrize("who", ["moderator", "admin"])
async def test_reviewer_approves_submitted(client: Client, auth: Auth, who):
    response = await client.post(f"/events/{WORKSHOP_ID}/approve", headers=auth[who])

    assert response.status_code == 200
    assert response.json()["status"] == "APPROVED"


async def test_user_approve_is_403_before_lookup(client: Client, auth: Auth):
    for event_id in (WORKSHOP_ID, SUMMIT_ID, "does-not-exist"):
        response = await client.post(f"/events/{event_id}/approve", headers=auth["user"])
        assert response.status_code == 403
        assert response.json()["code"] == "INSUFFICIENT_ROLE"
    rejected = await client.post(
        f"/events/{WORKSHOP_ID}/reject", json={"reason": "Not this quarter."}, headers=auth["user"]
    )
    assert rejected.status_code == 403


async def test_approving_a_draft_is_409(client: Client, auth: Auth):
    draft = await create(client, auth["user"])

    response = await client.post(f"/events/{draft['id']}/approve", headers=auth["moderator"])

    assert response.status_code == 409
    assert response.json()["detail"] == (
        "Cannot approve event with status DRAFT. Only SUBMITTED events can be approved."
    )


async def test_reviewer_of_another_tenant_gets_404(client: Client, auth: Auth):
    response = await client.post(f"/events/{SUMMIT_ID}/approve", headers=auth["moderator"])

    assert response.status_code == 404


async def test_reject_records_reason_and_is_terminal(client: Client, auth: Auth):
    reason = "Budget is frozen until next quarter."
    response = await client.post(
        f"/events/{WORKSHOP_ID}/reject", json={"reason": reason}, headers=auth["moderator"]
    )

    assert response.status_code == 200
    assert response.json()["status"] == "REJECTED"
    assert response.json()["rejectionReason"] == reason
    for action, who in (("submit", "user"), ("approve", "admin"), ("reject", "admin")):
        again = await client.post(
            f"/events/{WORKSHOP_ID}/{action}", json={"reason": reason}, headers=auth[who]
        )
        assert again.status_code in (400, 409)
        assert again.json()["code"] in ("INVALID_TRANSITION", "VALIDATION_FAILED")
    final = await client.get(f"/events/{WORKSHOP_ID}", headers=auth["moderator"])
    assert final.json()["status"] == "REJECTED"


@pytest.mark.parametrize(
    "body",
    [
        None,
        {},
        {"reason": "too short"},
        {"reason": "x" * 501},
        {"reason": 42},
        {"reason": " " * 11},  # trimmed first: empty
    ],
)
async def test_reject_needs_a_reason_of_10_to_500_chars(client: Client, auth: Auth, body):
    response = await client.post(
        f"/events/{WORKSHOP_ID}/reject", json=body, headers=auth["moderator"]
    )

    assert response.status_code == 400
    state = await client.get(f"/events/{WORKSHOP_ID}", headers=auth["moderator"])
    assert state.json()["status"] == "SUBMITTED"


# Edge behaviour


async def test_malformed_json_is_400(client: Client, auth: Auth):
    response = await client.post(
        "/events",
        content=b'{"title": "x",',
        headers={**auth["user"], "Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "MALFORMED_JSON"


@pytest.mark.parametrize("body", [b"[]", b'"text"', b"42", b""])
async def test_body_that_is_not_an_object_is_400(client: Client, auth: Auth, body):
    response = await client.post(
        "/events", content=body, headers={**auth["user"], "Content-Type": "application/json"}
    )

    assert response.status_code == 400


async def test_body_over_64_kib_is_413_and_nothing_is_created(client: Client, auth: Auth):
    before = (await client.get("/events", headers=auth["admin"])).json()["meta"]["total"]

    response = await client.post(
        "/events", json=new_event(description="x" * 70_000), headers=auth["admin"]
    )

    assert response.status_code == 413
    assert response.json()["code"] == "PAYLOAD_TOO_LARGE"
    assert "x-correlation-id" in response.headers
    after = (await client.get("/events", headers=auth["admin"])).json()["meta"]["total"]
    assert after == before


async def test_unknown_route_and_wrong_method_are_problem_json(client: Client, auth: Auth):
    missing = await client.get("/nowhere", headers={"X-Correlation-ID": "lost-1"})
    wrong = await client.put(f"/events/{WORKSHOP_ID}", headers=auth["admin"])

    assert missing.status_code == 404
    assert missing.json()["correlationId"] == "lost-1"
    assert missing.headers["x-correlation-id"] == "lost-1"
    assert wrong.status_code == 405
    assert wrong.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("headers", "echoed"),
    [
        ({"X-Correlation-ID": "req-42.a:b_c-d"}, "req-42.a:b_c-d"),
        ({"X-Request-ID": "from-request-id"}, "from-request-id"),
        ({"X-Correlation-ID": "has space", "X-Request-ID": "fallback-ok"}, "fallback-ok"),
        ({"X-Correlation-ID": "x" * 129}, None),
        ({"X-Correlation-ID": "<script>"}, None),
        ({"X-Correlation-ID": ""}, None),
    ],
)
async def test_correlation_id_is_taken_only_when_valid(client: Client, headers, echoed):
    response = await client.get("/health/live", headers=headers)

    returned = response.headers["x-correlation-id"]
    if echoed is not None:
        assert returned == echoed
    else:
        assert len(returned) == 36 and returned.count("-") == 4
        assert returned not in headers.values()
    assert response.headers["x-response-time"].endswith("ms")


async def test_cors_preflight_is_answered(client: Client):
    response = await client.options(
        "/events",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )

    assert response.status_code in (200, 204)
    assert response.headers["access-control-allow-origin"] in ("*", "https://app.example.com")


async def test_openapi_schema_documents_every_route(client: Client):
    response = await client.get("/api/openapi.json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    assert set(paths) >= {
        "/auth/signup",
        "/auth/login",
        "/auth/me",
        "/events",
        "/events/{event_id}",
        "/events/{event_id}/submit",
        "/events/{event_id}/approve",
        "/events/{event_id}/reject",
    }
    list_params = {p["name"] for p in paths["/events"]["get"]["parameters"]}
    assert list_params >= {"page", "limit", "sortBy", "sortOrder", "status", "search"}
    assert "BearerToken" in response.json()["components"]["securitySchemes"]


async def test_the_schema_says_what_a_client_generator_needs(client: Client):
    doc = (await client.get("/api/openapi.json")).json()
    operations = {
        (method.upper(), path): operation
        for path, methods in doc["paths"].items()
        for method, operation in methods.items()
    }

    assert {o["operationId"] for o in operations.values()} >= {
        "signUp", "logIn", "getMe", "createEvent", "listEvents", "getEvent", "updateEvent",
        "deleteEvent", "submitEvent", "approveEvent", "rejectEvent", "getMetrics",
    }  # fmt: skip
    assert "content" not in operations[("DELETE", "/events/{event_id}")]["responses"]["204"]
    assert list(operations[("GET", "/metrics")]["responses"]["200"]["content"]) == ["text/plain"]
    schemas = doc["components"]["schemas"]
    assert schemas["CreateEvent"]["additionalProperties"] is False
    assert schemas["EventView"]["properties"]["id"]["format"] == "uuid"
    assert len(schemas["SignUp"]["oneOf"]) == 2
    created = operations[("POST", "/events")]["responses"]["201"]["headers"]
    assert created["X-Correlation-ID"]["required"] is True
    assert {"RateLimit-Remaining", "Idempotent-Replayed"} <= set(created)
    assert "WWW-Authenticate" in operations[("GET", "/auth/me")]["responses"]["401"]["headers"]


@pytest.mark.parametrize(
    ("operation", "path"),
    [("createEvent", "/events"), ("signUp", "/auth/signup"), ("logIn", "/auth/login")],
)
async def test_the_schemas_request_examples_are_accepted(
    client: Client, auth: Auth, operation: str, path: str
):
    """ "Try it out" in the docs sends these as they come."""
    doc = (await client.get("/api/openapi.json")).json()
    [body] = [
        o["requestBody"]["content"]["application/json"]["example"]
        for methods in doc["paths"].values()
        for o in methods.values()
        if o.get("operationId") == operation
    ]

    response = await client.post(path, json=body, headers=auth["admin"])

    assert response.status_code in (200, 201), response.text


async def test_options_lists_every_method_of_the_path_without_a_token(client: Client):
    response = await client.options(f"/events/{WORKSHOP_ID}")

    assert response.status_code == 204
    assert response.headers["allow"] == "DELETE, GET, OPTIONS, PATCH"


async def test_a_users_view_never_includes_admins_ids(client: Client, auth: Auth):
    response = await client.get("/events", headers=auth["user"])

    creators = {event["createdById"] for event in response.json()["data"]}
    assert creators == {USER_ID}
    assert ADMIN_ID not in response.text
