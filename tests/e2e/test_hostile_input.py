"""Input nobody planned for gets a clear 4xx problem, never a 500, and changes nothing."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.conftest import new_event

Client = httpx.AsyncClient
Auth = dict[str, dict[str, str]]
JSON = {"Content-Type": "application/json"}


async def total(client: Client, auth: Auth) -> int:
    response = await client.get("/events", headers=auth["admin"])
    count: int = response.json()["meta"]["total"]
    return count


@pytest.mark.parametrize(
    "body",
    [b"[" * 5000 + b"]" * 5000, b'{"title": ' + b"[" * 5000 + b"]" * 5000 + b"}"],
    ids=["nested-array", "nested-field"],
)
async def test_deeply_nested_json_is_400(client: Client, auth: Auth, body):
    response = await client.post("/events", content=body, headers={**auth["admin"], **JSON})

    assert response.status_code == 400
    assert response.json()["detail"] == "The request body is nested too deeply"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"startDate": "0001-01-01T00:00:00+05:00"}, "startDate"),
        ({"endDate": "9999-12-31T23:00:00-05:00"}, "endDate"),
        ({"endDate": "9999-01-01T00:00:00Z"}, "endDate"),  # the years are 1900-9998
        ({"startDate": "1899-12-31T23:59:59-05:00"}, "startDate"),
        ({"title": "nul \u0000 inside"}, "title"),
        ({"description": "nul in the description \u0000"}, "description"),
    ],
)
async def test_unstorable_values_are_400_and_nothing_is_created(
    client: Client, auth: Auth, fields, field
):
    before = await total(client, auth)

    response = await client.post("/events", json=new_event(**fields), headers=auth["admin"])

    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert await total(client, auth) == before


@pytest.mark.parametrize(
    "query",
    [
        "startDateFrom=0001-01-01T00:00:00%2B05:00",
        "startDateTo=9999-12-31T23:59:59-05:00",
        "page=1000000000000000000000",
        "search=%00",
    ],
)
async def test_unusable_query_values_are_400(client: Client, auth: Auth, query):
    response = await client.get(f"/events?{query}", headers=auth["admin"])

    assert response.status_code == 400
    assert response.json()["code"] == "VALIDATION_FAILED"


async def test_the_calendar_counts_the_year_as_written(client: Client, auth: Auth):
    """The schema's date pattern and the server agree: 1900-9998 as written, whatever the offset
    makes of it in UTC; such an event can later be edited without touching its dates."""
    created = await client.post(
        "/events",
        json=new_event(startDate="1900-01-01T00:00:00+14:00", endDate="9998-12-31T23:59:59-14:00"),
        headers=auth["admin"],
    )
    assert created.status_code == 201, created.text
    assert created.json()["startDate"] == "1899-12-31T10:00:00.000Z"

    renamed = await client.patch(
        f"/events/{created.json()['id']}", json={"title": "Renamed"}, headers=auth["admin"]
    )
    assert renamed.status_code == 200, renamed.text


async def test_lone_surrogates_in_json_strings_are_400(client: Client, auth: Auth):
    login = await client.post(
        "/auth/login",
        content=b'{"email": "admin@acme.com", "password": "Pass\\ud800word1"}',
        headers=JSON,
    )
    create = await client.post(
        "/events",
        content=b'{"title": "Broken \\udfff text", "description": "Long enough text.",'
        b' "startDate": "2026-09-01T09:00:00Z", "endDate": "2026-09-01T10:00:00Z"}',
        headers={**auth["admin"], **JSON},
    )

    for response in (login, create):
        assert response.status_code == 400
        assert response.json()["code"] == "MALFORMED_JSON"


async def test_very_long_event_ids_are_simply_not_found(client: Client, auth: Auth):
    response = await client.get("/events/" + "a" * 2000, headers=auth["admin"])

    assert response.status_code == 404


async def test_invalid_utf8_body_is_400(client: Client, auth: Auth):
    response = await client.post(
        "/events", content=b'{"title": "\xff\xfe"}', headers={**auth["admin"], **JSON}
    )

    assert response.status_code == 400
    assert response.json()["code"] == "MALFORMED_JSON"


async def test_unknown_names_are_echoed_back_truncated(client: Client, auth: Auth):
    long_name = "n" * 5000
    body = await client.post("/events", json={**new_event(), long_name: 1}, headers=auth["admin"])
    query = await client.get(f"/events?{long_name}=1", headers=auth["admin"])

    for response in (body, query):
        assert response.status_code == 400
        assert len(response.text) < 1000
        assert response.json()["errors"][0]["field"] == "n" * 61 + "..."


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json-patch+json",
        "application/json; charset=latin-1",
        None,
    ],
)
async def test_a_body_that_is_not_declared_json_is_415_and_nothing_is_created(
    client: Client, auth: Auth, content_type
):
    before = await total(client, auth)
    headers = {**auth["admin"], **({"Content-Type": content_type} if content_type else {})}
    body = json.dumps(new_event()).encode()
    response = await client.post("/events", content=body, headers=headers)

    assert response.status_code == 415
    assert response.json()["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert await total(client, auth) == before


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"]
)
async def test_json_is_taken_with_or_without_charset(client: Client, auth: Auth, content_type):
    response = await client.post(
        "/events",
        content=json.dumps(new_event()).encode(),
        headers={**auth["admin"], "Content-Type": content_type},
    )

    assert response.status_code == 201
