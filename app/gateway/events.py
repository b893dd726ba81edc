"""HTTP -> events commands -> views. Rules live in the events module, not here."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from app.bus.bus import Bus
from app.bus.envelope import Principal
from app.gateway.idempotency import IdempotencyKey, replied
from app.gateway.policy import RoutePolicies
from app.gateway.problems import problem_responses
from app.gateway.security import BEARER_SCHEME, authenticated
from app.gateway.validation import QUERY_OPT
from app.modules.events.contracts import (
    MAX_PAGE,
    ApproveEvent,
    CreateEvent,
    DeleteEvent,
    EventChanges,
    EventPage,
    EventStatus,
    EventView,
    FindEvent,
    ListEvents,
    RejectEvent,
    Rejection,
    SortField,
    SortOrder,
    SubmitEvent,
    UpdateEvent,
)

Caller = NamedDependency[Principal]
Policies = NamedDependency[RoutePolicies]
TheBus = NamedDependency[Bus]


class EventsController(Controller):
    path = "/events"
    tags = ["events"]
    guards = [authenticated]
    security = [{BEARER_SCHEME: []}]

    @post("/", summary="Create a DRAFT event", responses=problem_responses(401, 409, 413, 422))
    async def create(
        self,
        data: JSONBody[CreateEvent],
        principal: Caller,
        bus: TheBus,
        policies: Policies,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[EventView]:
        return await _write(bus, "events.create", data, principal, policies, idempotency_key, 201)

    @get(
        "/",
        opt={QUERY_OPT: ListEvents},
        summary="List events, filtered, sorted and paged",
        responses=problem_responses(401),
    )
    async def list(
        self,
        principal: Caller,
        bus: TheBus,
        policies: Policies,
        page: Annotated[
            int, QueryParameter(ge=1, le=MAX_PAGE, description="Page number, from 1")
        ] = 1,
        limit: Annotated[int, QueryParameter(ge=1, le=100, description="Page size, 1-100")] = 10,
        sort_by: Annotated[SortField, QueryParameter(name="sortBy")] = "startDate",
        sort_order: Annotated[SortOrder, QueryParameter(name="sortOrder")] = "asc",
        status: FromQuery[EventStatus | None] = None,
        search: Annotated[
            str | None,
            QueryParameter(
                max_length=200, description="Case-insensitive substring of title or description"
            ),
        ] = None,
        start_date_from: Annotated[
            datetime | None,
            QueryParameter(name="startDateFrom", description="Inclusive lower bound on startDate"),
        ] = None,
        start_date_to: Annotated[
            datetime | None,
            QueryParameter(name="startDateTo", description="Inclusive upper bound on startDate"),
        ] = None,
    ) -> EventPage:
        query = ListEvents(
            page=page,
            limit=limit,
            sort_by=sort_by,
            sort_order=sort_order,
            status=status,
            search=search,
            start_date_from=start_date_from,
            start_date_to=start_date_to,
        )
        result: EventPage = await bus.send(
            {"cmd": "events.findAll"}, query, principal=principal, policy=policies.list
        )
        return result

    @get("/{event_id:str}", summary="One event", responses=problem_responses(401, 403, 404))
    async def find(
        self, event_id: FromPath[str], principal: Caller, bus: TheBus, policies: Policies
    ) -> EventView:
        view: EventView = await bus.send(
            {"cmd": "events.findOne"},
            FindEvent(event_id=event_id),
            principal=principal,
            policy=policies.read_one,
        )
        return view

    @patch(
        "/{event_id:str}",
        summary="Change an event's details (never its status)",
        responses=problem_responses(401, 403, 404, 409, 413, 422),
    )
    async def update(
        self,
        event_id: FromPath[str],
        data: JSONBody[EventChanges],
        principal: Caller,
        bus: TheBus,
        policies: Policies,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[EventView]:
        command = UpdateEvent(event_id=event_id, changes=data)
        return await _write(bus, "events.update", command, principal, policies, idempotency_key)

    @delete(
        "/{event_id:str}",
        status_code=204,
        summary="Delete an event",
        responses=problem_responses(401, 403, 404, 409, 422),
    )
    async def remove(
        self,
        event_id: FromPath[str],
        principal: Caller,
        bus: TheBus,
        policies: Policies,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[None]:
        command = DeleteEvent(event_id=event_id)
        return await _write(
            bus, "events.delete", command, principal, policies, idempotency_key, 204
        )

    @post(
        "/{event_id:str}/submit",
        status_code=200,
        summary="DRAFT -> SUBMITTED (creator only)",
        responses=problem_responses(401, 403, 404, 409, 422),
    )
    async def submit(
        self,
        event_id: FromPath[str],
        principal: Caller,
        bus: TheBus,
        policies: Policies,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[EventView]:
        command = SubmitEvent(event_id=event_id)
        return await _write(bus, "events.submit", command, principal, policies, idempotency_key)

    @post(
        "/{event_id:str}/approve",
        status_code=200,
        summary="SUBMITTED -> APPROVED",
        responses=problem_responses(401, 403, 404, 409, 422),
    )
    async def approve(
        self,
        event_id: FromPath[str],
        principal: Caller,
        bus: TheBus,
        policies: Policies,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[EventView]:
        command = ApproveEvent(event_id=event_id)
        return await _write(bus, "events.approve", command, principal, policies, idempotency_key)

    @post(
        "/{event_id:str}/reject",
        status_code=200,
        summary="SUBMITTED -> REJECTED, with a reason",
        responses=problem_responses(401, 403, 404, 409, 413, 422),
    )
    async def reject(
        self,
        event_id: FromPath[str],
        data: JSONBody[Rejection],
        principal: Caller,
        bus: TheBus,
        policies: Policies,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[EventView]:
        command = RejectEvent(event_id=event_id, reason=data.reason)
        return await _write(bus, "events.reject", command, principal, policies, idempotency_key)


async def _write(
    bus: Bus,
    cmd: str,
    payload: object,
    principal: Principal,
    policies: RoutePolicies,
    idempotency_key: str | None,
    status_code: int = 200,
) -> Response[Any]:
    outcome = await bus.call(
        {"cmd": cmd},
        payload,
        principal=principal,
        idempotency_key=idempotency_key,
        policy=policies.write,
    )
    return replied(outcome, status_code)
