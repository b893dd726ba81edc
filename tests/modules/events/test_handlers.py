"""Events handlers over a real SQLite unit of work: tenant scope lives in the query."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from app.identity import Principal, Role
from app.modules.events import handlers, repository
from app.modules.events.contracts import (
    CreateEvent,
    DeleteEvent,
    EventNotFound,
    FindEvent,
    ListEvents,
    SubmitEvent,
)
from app.modules.events.model import EVENTS
from app.modules.events.uow import EventsUnitOfWork
from app.storage.port import Query
from tests.modules.conftest import BUS, Transactions

ALICE = Principal(user_id="alice", organization_id="org-a", role=Role.ADMIN, email="a@a.io")
BOB = Principal(user_id="bob", organization_id="org-b", role=Role.ADMIN, email="b@b.io")
CAROL = Principal(user_id="carol", organization_id="org-a", role=Role.USER, email="c@a.io")


def command(title: str = "Planning day", day: int = 1) -> CreateEvent:
    return CreateEvent(
        title=title,
        description="Plan the quarter together.",
        start_date=datetime(2026, 9, day, 9, tzinfo=UTC),
        end_date=datetime(2026, 9, day, 12, tzinfo=UTC),
    )


async def test_created_event_is_persisted_on_commit(tx: Transactions):
    async with tx() as t:
        view = await handlers.create_event(command(), EventsUnitOfWork(t, BUS), ALICE)

    async with tx() as t:
        stored = await EventsUnitOfWork(t, BUS).events.get(view.id, "org-a")
    assert stored is not None
    assert stored.organization_id == "org-a"
    assert stored.start_date == datetime(2026, 9, 1, 9, tzinfo=UTC)


async def test_another_tenants_event_is_not_found_by_any_handler(tx: Transactions):
    async with tx() as t:
        view = await handlers.create_event(command(), EventsUnitOfWork(t, BUS), ALICE)

    attempts: list[Callable[[EventsUnitOfWork], Awaitable[object]]] = [
        lambda uow: handlers.find_event(FindEvent(event_id=view.id), uow, BOB),
        lambda uow: handlers.submit_event(SubmitEvent(event_id=view.id), uow, BOB),
        lambda uow: handlers.delete_event(DeleteEvent(event_id=view.id), uow, BOB),
    ]
    for attempt in attempts:
        async with tx() as t:
            with pytest.raises(EventNotFound):
                await attempt(EventsUnitOfWork(t, BUS))

    async with tx() as t:
        assert await EventsUnitOfWork(t, BUS).events.get(view.id, "org-a") is not None


async def test_list_is_scoped_to_tenant_and_to_own_events_for_users(tx: Transactions):
    async with tx() as t:
        uow = EventsUnitOfWork(t, BUS)
        await handlers.create_event(command("Alice one", 1), uow, ALICE)
        await handlers.create_event(command("Carol one", 2), uow, CAROL)
        await handlers.create_event(command("Bob one", 3), uow, BOB)

    async with tx() as t:
        uow = EventsUnitOfWork(t, BUS)
        admin_page = await handlers.list_events(ListEvents(), uow, ALICE)
        user_page = await handlers.list_events(ListEvents(), uow, CAROL)
        other_page = await handlers.list_events(ListEvents(), uow, BOB)

    assert [e.title for e in admin_page.data] == ["Alice one", "Carol one"]
    assert [e.title for e in user_page.data] == ["Carol one"]
    assert [e.title for e in other_page.data] == ["Bob one"]
    assert admin_page.meta.total == 2 and user_page.meta.total == 1


async def test_failed_transaction_leaves_nothing_behind(tx: Transactions):
    with pytest.raises(RuntimeError):
        async with tx() as t:
            await handlers.create_event(command(), EventsUnitOfWork(t, BUS), ALICE)
            raise RuntimeError("crash after the write, before commit")

    async with tx() as t:
        assert await t.fetch_one(Query(select(func.count()).select_from(EVENTS))) == (0,)


async def test_delete_removes_the_row(tx: Transactions):
    async with tx() as t:
        view = await handlers.create_event(command(), EventsUnitOfWork(t, BUS), CAROL)
    async with tx() as t:
        await handlers.delete_event(DeleteEvent(event_id=view.id), EventsUnitOfWork(t, BUS), CAROL)
    async with tx() as t:
        assert await EventsUnitOfWork(t, BUS).events.get(view.id, "org-a") is None


@pytest.mark.parametrize("cap", [1, 1000])
async def test_search_answers_the_same_through_the_index_or_a_scan(
    tx: Transactions, monkeypatch: pytest.MonkeyPatch, cap: int
):
    """On SQLite a search for text found in more than `cap` events scans instead of using the
    index; either way (and on PostgreSQL) the page, the order and the total are the same."""
    monkeypatch.setattr(repository, "_INDEXED_SEARCH_MAX_MATCHES", cap)
    async with tx() as t:
        uow = EventsUnitOfWork(t, BUS)
        for n, title in enumerate(["Budget review", "Review of budgets", "Offsite"]):
            await handlers.create_event(command(title, n + 1), uow, ALICE)
        await handlers.create_event(command("Budget for org B", 1), uow, BOB)

    async with tx() as t:
        found = await handlers.list_events(
            ListEvents(search="BUDGET", sort_by="startDate", sort_order="desc"),
            EventsUnitOfWork(t, BUS),
            ALICE,
        )

    assert [e.title for e in found.data] == ["Review of budgets", "Budget review"]
    assert found.meta.total == 2
