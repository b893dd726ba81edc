"""Properties, with hypothesis: the workflow never leaves its allowed transitions, whoever does
what in whatever order; and paging through any data shows every visible event exactly once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from sqlalchemy.ext.asyncio import AsyncEngine

from app.errors import AppError
from app.identity import Principal, Role
from app.modules.events import handlers
from app.modules.events.contracts import CreateEvent, EventChanges, EventStatus, ListEvents
from app.modules.events.model import Event
from app.modules.events.uow import EventsUnitOfWork
from app.storage.connect import open_database
from tests.modules.conftest import BUS, handling

S = EventStatus
ALLOWED = {
    (S.DRAFT, S.SUBMITTED),
    (S.SUBMITTED, S.APPROVED),
    (S.SUBMITTED, S.REJECTED),
}
OWNER = "owner"
principals = st.builds(
    lambda role, own: Principal(
        user_id=OWNER if own else "someone-else", organization_id="org", role=role, email="x@y.z"
    ),
    st.sampled_from(list(Role)),
    st.booleans(),
)


class Workflow(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        start = datetime(2026, 9, 1, 9, tzinfo=UTC)
        self.event = Event.create(
            CreateEvent(
                title="Planning",
                description="Plan the quarter.",
                start_date=start,
                end_date=start + timedelta(hours=3),
            ),
            by=Principal(user_id=OWNER, organization_id="org", role=Role.USER, email="o@y.z"),
        )
        self.history = [self.event.state]

    def _attempt(self, action: object) -> None:
        before = self.event.state
        try:
            action()  # type: ignore[operator]
        except AppError:
            assert self.event.state == before  # a refused action changes nothing
        after = self.event.state
        if after != before:
            assert (before, after) in ALLOWED, f"{before} -> {after}"
            self.history.append(after)

    @rule(by=principals)
    def submit(self, by: Principal) -> None:
        self._attempt(lambda: self.event.submit(by=by))

    @rule(by=principals)
    def approve(self, by: Principal) -> None:
        self._attempt(lambda: self.event.approve(by=by))

    @rule(by=principals, reason=st.text(min_size=10, max_size=20))
    def reject(self, by: Principal, reason: str) -> None:
        self._attempt(lambda: self.event.reject(by=by, reason=reason))

    @rule(by=principals, title=st.text(min_size=3, max_size=20))
    def update(self, by: Principal, title: str) -> None:
        self._attempt(lambda: self.event.update(EventChanges(title=title), by=by))

    @invariant()
    def terminal_states_stay(self) -> None:
        for done in (S.APPROVED, S.REJECTED):
            if done in self.history:
                assert self.history[-1] == done

    @invariant()
    def a_reason_exactly_when_rejected(self) -> None:
        assert (self.event.rejection_reason is not None) == (self.event.state == S.REJECTED)


TestWorkflow = Workflow.TestCase
TestWorkflow.settings = settings(max_examples=200, stateful_step_count=15, deadline=None)


events = st.lists(
    st.tuples(
        st.integers(0, 5),  # start day: many equal sort keys
        st.sampled_from(["Alpha", "beta", "Gamma", "alpha"]),
        st.sampled_from(["creator", "other"]),
    ),
    max_size=25,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=events,
    limit=st.integers(1, 7),
    sort_by=st.sampled_from(["createdAt", "startDate", "title", "status"]),
    order=st.sampled_from(["asc", "desc"]),
    role=st.sampled_from(list(Role)),
)
def test_pages_show_every_visible_event_exactly_once(
    engine: AsyncEngine,
    data: list[tuple[int, str, str]],
    limit: int,
    sort_by: str,
    order: str,
    role: Role,
) -> None:
    url = engine.url.render_as_string(hide_password=False)
    asyncio.run(_check_pages(url, data, limit, sort_by, order, role))


async def _check_pages(
    url: str,
    data: list[tuple[int, str, str]],
    limit: int,
    sort_by: str,
    order: str,
    role: Role,
) -> None:
    database = open_database(url)  # connections belong to their event loop; this one is new
    org = str(uuid.uuid4())
    people = {
        name: Principal(
            user_id=str(uuid.uuid4()), organization_id=org, role=Role.USER, email="p@o.io"
        )
        for name in ("creator", "other")
    }
    try:
        start = datetime(2026, 9, 1, 9, tzinfo=UTC)
        created: dict[str, str] = {}
        async with database.transaction(write=True) as t:
            with handling(t):
                for day, title, who in data:
                    command = CreateEvent(
                        title=title,
                        description="Random event here.",
                        start_date=start + timedelta(days=day),
                        end_date=start + timedelta(days=day, hours=1),
                    )
                    view = await handlers.create_event(
                        command, EventsUnitOfWork(t, BUS), people[who]
                    )
                    created[view.id] = who
        viewer = Principal(
            user_id=people["creator"].user_id, organization_id=org, role=role, email="v@o.io"
        )
        visible = {i for i, who in created.items() if role != Role.USER or who == "creator"}

        seen: list[str] = []
        page = 1
        while True:
            async with database.transaction(write=True) as t:
                result = await handlers.list_events(
                    ListEvents(page=page, limit=limit, sort_by=sort_by, sort_order=order),  # type: ignore[arg-type]
                    EventsUnitOfWork(t, BUS),
                    viewer,
                )
            seen += [e.id for e in result.data]
            assert result.meta.total == len(visible)
            if not result.meta.has_next:
                break
            page += 1

        assert len(seen) == len(set(seen))
        assert set(seen) == visible
    finally:
        await database.close()
