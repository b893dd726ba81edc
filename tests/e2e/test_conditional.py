"""Optimistic concurrency: ETags on one event or member, If-Match on the requests that change
it, If-None-Match on GET /events/{id}, Location on 201. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import USER_ID, both_databases, new_event

Client = httpx.AsyncClient
Headers = dict[str, dict[str, str]]

db_backend = both_databases


async def created(client: Client, headers: dict[str, str]) -> httpx.Response:
    response = await client.post("/events", json=new_event(), headers=headers)
    assert response.status_code == 201
    return response


async def test_a_new_event_has_a_location_and_an_etag_and_reads_back_with_the_same(
    client: Client, auth: Headers
):
    response = await created(client, auth["admin"])
    read = await client.get(response.headers["Location"], headers=auth["admin"])

    assert response.headers["Location"] == f"/events/{response.json()['id']}"
    assert response.headers["ETag"] == '"1"'
    assert read.status_code == 200
    assert read.headers["ETag"] == '"1"'


async def test_if_none_match_answers_304_while_the_copy_is_current(client: Client, auth: Headers):
    path = (await created(client, auth["admin"])).headers["Location"]

    current = await client.get(path, headers={**auth["admin"], "If-None-Match": '"1"'})
    weak = await client.get(path, headers={**auth["admin"], "If-None-Match": 'W/"1", "7"'})
    await client.patch(path, json={"title": "Changed meanwhile"}, headers=auth["admin"])
    stale = await client.get(path, headers={**auth["admin"], "If-None-Match": '"1"'})

    assert current.status_code == 304
    assert current.content == b""
    assert current.headers["ETag"] == '"1"'
    assert weak.status_code == 304
    assert stale.status_code == 200
    assert stale.headers["ETag"] == '"2"'
    assert stale.json()["title"] == "Changed meanwhile"


async def test_two_clients_editing_one_event_one_wins_the_other_gets_412_nothing_is_lost(
    client: Client, auth: Headers
):
    """Both read version 1 and send their change conditional on it, at the same moment."""
    path = (await created(client, auth["admin"])).headers["Location"]
    read = await client.get(path, headers=auth["moderator"])
    tag = read.headers["ETag"]

    first, second = await asyncio.gather(
        client.patch(
            path, json={"title": "Alice's title"}, headers={**auth["admin"], "If-Match": tag}
        ),
        client.patch(
            path, json={"title": "Bob's title"}, headers={**auth["moderator"], "If-Match": tag}
        ),
    )
    final = await client.get(path, headers=auth["admin"])

    assert sorted((first.status_code, second.status_code)) == [200, 412]
    winner, loser = (first, second) if first.status_code == 200 else (second, first)
    assert loser.json()["code"] == "PRECONDITION_FAILED"
    assert final.json()["title"] == winner.json()["title"]
    assert final.headers["ETag"] == '"2"'  # one change, not two


async def test_a_stale_if_match_changes_nothing_on_every_conditional_route(
    client: Client, auth: Headers
):
    path = (await created(client, auth["user"])).headers["Location"]
    stale = {**auth["user"], "If-Match": '"9"'}

    patched = await client.patch(path, json={"title": "Not this"}, headers=stale)
    submitted = await client.post(f"{path}/submit", headers=stale)
    deleted = await client.delete(path, headers=stale)
    malformed = await client.post(f"{path}/submit", headers={**auth["user"], "If-Match": "1"})
    unchanged = await client.get(path, headers=auth["user"])
    then = await client.post(f"{path}/submit", headers={**auth["user"], "If-Match": '"1"'})
    approved = await client.post(
        f"{path}/approve", headers={**auth["moderator"], "If-Match": '"1"'}
    )
    anyway = await client.post(f"{path}/approve", headers={**auth["moderator"], "If-Match": "*"})

    assert [r.status_code for r in (patched, submitted, deleted, malformed)] == [412] * 4
    assert unchanged.json()["status"] == "DRAFT" and unchanged.headers["ETag"] == '"1"'
    assert then.status_code == 200 and then.headers["ETag"] == '"2"'
    assert approved.status_code == 412  # it was submitted since the moderator's version 1
    assert anyway.status_code == 200 and anyway.json()["status"] == "APPROVED"


async def test_a_member_has_an_etag_and_a_stale_if_match_changes_nothing(
    client: Client, auth: Headers
):
    path = f"/organization/members/{USER_ID}"
    read = await client.get(path, headers=auth["admin"])
    promoted = await client.patch(
        path,
        json={"role": "MODERATOR"},
        headers={**auth["admin"], "If-Match": read.headers["ETag"]},
    )
    stale = await client.patch(
        path, json={"role": "ADMIN"}, headers={**auth["admin"], "If-Match": read.headers["ETag"]}
    )
    after = await client.get(path, headers=auth["admin"])

    assert read.headers["ETag"] == '"1"'
    assert promoted.status_code == 200 and promoted.headers["ETag"] == '"2"'
    assert (stale.status_code, stale.json()["code"]) == (412, "PRECONDITION_FAILED")
    assert after.json()["role"] == "MODERATOR"
