"""GET /events: who sees what, pagination, sorting with a stable tie-break, filters and search."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import CONFERENCE_ID, SUMMIT_ID, WORKSHOP_ID, both_databases, new_event

Client = httpx.AsyncClient
Auth = dict[str, dict[str, str]]

db_backend = both_databases  # these tests run on SQLite and on PostgreSQL


async def listing(client: Client, headers: dict[str, str], **params: str | int) -> Any:
    response = await client.get("/events", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def ids(page: Any) -> list[str]:
    return [event["id"] for event in page["data"]]


async def test_user_sees_only_own_events(client: Client, auth: Auth):
    assert ids(await listing(client, auth["user"])) == [WORKSHOP_ID]
    assert ids(await listing(client, auth["tech"])) == [SUMMIT_ID]


@pytest.mark.parametrize("who", ["moderator", "admin"])
async def test_reviewers_see_all_of_their_org_and_nothing_else(client: Client, auth: Auth, who):
    page = await listing(client, auth[who])

    assert ids(page) == [WORKSHOP_ID, CONFERENCE_ID]  # startDate ascending
    assert page["meta"] == {
        "page": 1,
        "limit": 10,
        "total": 2,
        "totalPages": 1,
        "hasPrevious": False,
        "hasNext": False,
    }


async def test_pages_cover_every_event_once_even_with_equal_sort_keys(client: Client, auth: Auth):
    created = set()
    for n in range(7):
        response = await client.post(
            "/events", json=new_event(title=f"Same start {n}"), headers=auth["admin"]
        )
        created.add(response.json()["id"])

    seen: list[str] = []
    for page_number in (1, 2, 3):
        page = await listing(client, auth["admin"], page=page_number, limit=3)
        seen += ids(page)
        assert page["meta"]["totalPages"] == 3
        assert page["meta"]["hasPrevious"] is (page_number > 1)
        assert page["meta"]["hasNext"] is (page_number < 3)

    assert len(seen) == len(set(seen)) == 9
    assert created <= set(seen)
    same_start = [i for i in seen if i in created]
    assert same_start == sorted(same_start)  # ties broken by id


async def test_page_past_the_end_is_empty_not_an_error(client: Client, auth: Auth):
    page = await listing(client, auth["admin"], page=5)

    assert page["data"] == []
    assert page["meta"]["total"] == 2
    assert page["meta"]["hasNext"] is False


CONFERENCE, WORKSHOP, ZETA = "Annual Tech Conference 2026", "Team Building Workshop", "Zeta Offsite"


@pytest.mark.parametrize(
    ("sort_by", "order", "expected"),
    [
        ("title", "asc", [CONFERENCE, WORKSHOP, ZETA]),
        ("title", "desc", [ZETA, WORKSHOP, CONFERENCE]),
        ("startDate", "desc", [ZETA, CONFERENCE, WORKSHOP]),
        ("status", "asc", [CONFERENCE, ZETA, WORKSHOP]),  # APPROVED < DRAFT < SUBMITTED
    ],
)
async def test_sorting(client: Client, auth: Auth, sort_by, order, expected):
    await client.post(
        "/events",
        json=new_event(
            title="Zeta Offsite",
            startDate="2026-12-01T09:00:00Z",
            endDate="2026-12-01T10:00:00Z",
        ),
        headers=auth["admin"],
    )

    page = await listing(client, auth["admin"], sortBy=sort_by, sortOrder=order)

    assert [e["title"] for e in page["data"]] == expected


async def test_sort_by_created_at(client: Client, auth: Auth):
    first = (await client.post("/events", json=new_event(), headers=auth["admin"])).json()
    second = (await client.post("/events", json=new_event(), headers=auth["admin"])).json()

    page = await listing(client, auth["admin"], sortBy="createdAt", sortOrder="desc")

    assert ids(page)[:2] == [second["id"], first["id"]]


async def test_filter_by_status(client: Client, auth: Auth):
    assert ids(await listing(client, auth["admin"], status="APPROVED")) == [CONFERENCE_ID]
    assert ids(await listing(client, auth["admin"], status="REJECTED")) == []


async def test_search_is_case_insensitive_over_title_or_description(client: Client, auth: Auth):
    assert ids(await listing(client, auth["admin"], search="TECH CONF")) == [CONFERENCE_ID]
    assert ids(await listing(client, auth["admin"], search="collaboration")) == [WORKSHOP_ID]
    assert ids(await listing(client, auth["admin"], search="nothing like this")) == []


@pytest.mark.parametrize("term", ["100%", "a_b", "back\\slash", 'quote\'s "both"'])
async def test_search_treats_wildcards_and_quotes_literally(client: Client, auth: Auth, term):
    match = (
        await client.post(
            "/events", json=new_event(title=f"Event {term} here"), headers=auth["admin"]
        )
    ).json()
    await client.post("/events", json=new_event(title="Event 1000 axb here"), headers=auth["admin"])

    page = await listing(client, auth["admin"], search=term)

    assert ids(page) == [match["id"]]


@pytest.mark.parametrize(("title", "term"), [("50% off", "%"), ("a_b", "_"), ("Event Qz", "qZ")])
async def test_short_searches_are_literal_and_case_insensitive(
    client: Client, auth: Auth, title: str, term: str
):
    """Under three characters the search index cannot help; the answer follows the same rules."""
    match = (
        await client.post("/events", json=new_event(title=title), headers=auth["admin"])
    ).json()
    await client.post("/events", json=new_event(title="Event axb"), headers=auth["admin"])

    assert ids(await listing(client, auth["admin"], search=term)) == [match["id"]]


async def test_search_follows_edits_and_deletions(client: Client, auth: Auth):
    event = (
        await client.post(
            "/events", json=new_event(title="Quarterly planning"), headers=auth["admin"]
        )
    ).json()
    await client.patch(
        f"/events/{event['id']}", json={"title": "Annual retreat"}, headers=auth["admin"]
    )
    assert ids(await listing(client, auth["admin"], search="quarterly")) == []
    assert ids(await listing(client, auth["admin"], search="retreat")) == [event["id"]]

    await client.delete(f"/events/{event['id']}", headers=auth["admin"])
    assert ids(await listing(client, auth["admin"], search="retreat")) == []


async def test_search_folds_case_beyond_ascii(client: Client, auth: Auth):
    event = (
        await client.post("/events", json=new_event(title="Événement d'été"), headers=auth["admin"])
    ).json()

    assert ids(await listing(client, auth["admin"], search="ÉVÉNEMENT")) == [event["id"]]
    assert ids(await listing(client, auth["admin"], search="D'ÉTÉ")) == [event["id"]]


@pytest.mark.parametrize("term", ["üb", "ÜB", "é", "Ü"])
async def test_short_searches_fold_case_beyond_ascii_too(client: Client, auth: Auth, term: str):
    """One or two characters are not looked up in the search index but scanned for: the same
    Unicode case folding applies (`üb` finds `Über`)."""
    match = (
        await client.post(
            "/events",
            json=new_event(title="Über den Wolken", description="Eine Rundfahrt mit Café."),
            headers=auth["admin"],
        )
    ).json()
    await client.post("/events", json=new_event(title="Plain ascii title"), headers=auth["admin"])

    assert ids(await listing(client, auth["admin"], search=term)) == [match["id"]]


async def test_start_date_range_is_inclusive(client: Client, auth: Auth):
    page = await listing(
        client,
        auth["admin"],
        startDateFrom="2026-03-20T10:00:00Z",
        startDateTo="2026-06-15T09:00:00.000Z",
    )
    assert set(ids(page)) == {WORKSHOP_ID, CONFERENCE_ID}

    page = await listing(client, auth["admin"], startDateFrom="2026-03-20T10:00:00.001Z")
    assert ids(page) == [CONFERENCE_ID]

    page = await listing(client, auth["admin"], startDateTo="2026-03-20T12:00:00+02:00")
    assert ids(page) == [WORKSHOP_ID]


async def test_filters_combine_with_the_users_scope(client: Client, auth: Auth):
    page = await listing(client, auth["user"], status="APPROVED")

    assert ids(page) == []


@pytest.mark.parametrize(
    ("params", "fields"),
    [
        ({"page": "0"}, ["page"]),
        ({"page": "abc"}, ["page"]),
        ({"limit": "101"}, ["limit"]),
        ({"limit": "0"}, ["limit"]),
        ({"sortBy": "password"}, ["sortBy"]),
        ({"sortOrder": "sideways"}, ["sortOrder"]),
        ({"status": "ARCHIVED"}, ["status"]),
        ({"startDateFrom": "yesterday"}, ["startDateFrom"]),
        ({"startDateTo": "2026-01-01T00:00:00"}, ["startDateTo"]),
        ({"startDateTo": "0.5"}, ["startDateTo"]),  # not a Unix timestamp
        ({"startDateFrom": "1700000000"}, ["startDateFrom"]),
        ({"page": "1e3"}, ["page"]),
        ({"page": "+2"}, ["page"]),
        ({"limit": "10.0"}, ["limit"]),
        ({"page": "99999999999999999999999"}, ["page"]),
        ({"search": "x" * 201}, ["search"]),
        ({"organizationId": "other"}, ["organizationId"]),
        ({"page": "0", "limit": "500", "foo": "1"}, ["foo", "page", "limit"]),
    ],
)
async def test_bad_query_parameters_are_400_listing_each(
    client: Client, auth: Auth, params, fields
):
    response = await client.get("/events", params=params, headers=auth["admin"])

    assert response.status_code == 400
    assert response.json()["code"] == "VALIDATION_FAILED"
    assert [e["field"] for e in response.json()["errors"]] == fields


async def test_repeated_query_parameter_is_400(client: Client, auth: Auth):
    response = await client.get("/events?page=1&page=2", headers=auth["admin"])

    assert response.status_code == 400


async def test_query_parameters_on_routes_that_take_none_are_400(client: Client, auth: Auth):
    response = await client.get(f"/events/{WORKSHOP_ID}?debug=1", headers=auth["admin"])

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "debug", "message": "Unknown query parameter 'debug'"}
    ]
