"""Property: whatever the interleaving of duplicate keyed requests, no key ever causes two state
changes, and every success for a key is the same outcome."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import new_event

Auth = dict[str, dict[str, str]]

Request = tuple[int, int, int]  # (key number, body variant, scheduling yields before sending)
requests = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 1), st.integers(0, 3)), min_size=2, max_size=12
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(batch=requests)
async def test_duplicate_keyed_requests_never_change_state_twice(
    client: httpx.AsyncClient, auth: Auth, batch: list[Request]
):
    run = uuid.uuid4().hex[:8]
    headers = auth["admin"]

    async def send(key: int, variant: int, yields: int) -> httpx.Response:
        for _ in range(yields):
            await asyncio.sleep(0)  # lets the other requests of the batch interleave here
        return await client.post(
            "/events",
            json=new_event(title=f"Prop {run} k{key} v{variant}"),
            headers={**headers, "Idempotency-Key": f"{run}-{key}"},
        )

    responses = await asyncio.gather(*(send(*request) for request in batch))

    assert {r.status_code for r in responses} <= {201, 409, 422}
    ids_by_key: dict[int, set[str]] = defaultdict(set)
    for (key, _, _), response in zip(batch, responses, strict=True):
        if response.status_code == 201:
            ids_by_key[key].add(response.json()["id"])
    assert all(len(ids) == 1 for ids in ids_by_key.values())

    page = await client.get(f"/events?search=Prop%20{run}&limit=100", headers=headers)
    created = page.json()["data"]
    assert len(created) == len(ids_by_key)
    assert {e["id"] for e in created} == set().union(*ids_by_key.values())
