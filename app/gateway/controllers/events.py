"""HTTP -> events commands -> views. Rules live in the events module, not here."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from app.bus.contracts import Command
from app.gateway.conditional import (
    ETAG,
    LOCATION,
    IfMatch,
    IfNoneMatch,
    allowed_versions,
    etag,
    is_current,
)
from app.gateway.dependencies import gateway_of, principal_of
from app.gateway.idempotency import IdempotencyKey, replied
from app.gateway.problems import problem_responses
from app.gateway.security import AUTHENTICATED, BEARER_SCHEME
from app.gateway.validation import QUERY_OPT, Limit, Order, Page
from app.modules.events.contracts import (
    APPROVE_EVENT,
    CREATE_EVENT,
    DELETE_EVENT,
    EVENT_HISTORY,
    FIND_EVENT,
    LIST_EVENTS,
    REJECT_EVENT,
    SUBMIT_EVENT,
    UPDATE_EVENT,
    ApproveEvent,
    CreateEvent,
    DeleteEvent,
    EventChanges,
    EventHistory,
    EventPage,
    EventStatus,
    EventView,
    FindEvent,
    HistoryView,
    ListEvents,
    RejectEvent,
    Rejection,
    SortField,
    SubmitEvent,
    UpdateEvent,
)


class EventsController(Controller):
    path = "/events"
    tags = ["events"]
    opt = {AUTHENTICATED: True}
    security = [{BEARER_SCHEME: []}]

    @post(
        "/",
        operation_id="createEvent",
        summary="Create a DRAFT event",
        responses=problem_responses(401, 409, 413, 415, 422),
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[CreateEvent],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[EventView]:
        """Answers 201 with `Location: /events/{id}` and the new event's `ETag`."""
        return await _write(request, CREATE_EVENT, data, idempotency_key, 201)

    @get(
        "/",
        operation_id="listEvents",
        opt={QUERY_OPT: ListEvents},
        summary="List events, filtered, sorted and paged",
        responses=problem_responses(401),
    )
    async def list(
        self,
        request: Request[Any, Any, Any],
        page: Page = 1,
        limit: Limit = 10,
        sort_by: Annotated[SortField, QueryParameter(name="sortBy")] = "startDate",
        sort_order: Order = "asc",
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
        gateway = gateway_of(request)
        result: EventPage = await gateway.bus.send(
            LIST_EVENTS.pattern,
            query,
            principal=principal_of(request),
            policy=gateway.policies.list,
        )
        return result

    @get(
        "/{event_id:str}",
        operation_id="getEvent",
        summary="One event",
        responses={
            304: ResponseSpec(None, description="If-None-Match names the current version"),
            **problem_responses(401, 403, 404),
        },
    )
    async def find(
        self,
        request: Request[Any, Any, Any],
        event_id: FromPath[str],
        if_none_match: IfNoneMatch = None,
    ) -> Response[EventView | None]:
        gateway = gateway_of(request)
        view: EventView = await gateway.bus.send(
            FIND_EVENT.pattern,
            FindEvent(event_id=event_id),
            principal=principal_of(request),
            policy=gateway.policies.read_one,
        )
        tag = {ETAG: etag(view.version)}
        if is_current(if_none_match, view.version):
            return Response(None, status_code=304, headers=tag)
        return Response(view, headers=tag)

    @get(
        "/{event_id:str}/history",
        operation_id="getEventHistory",
        summary="Every change of the event, oldest first (whoever may read the event)",
        responses=problem_responses(401, 403, 404),
    )
    async def history(
        self, request: Request[Any, Any, Any], event_id: FromPath[str]
    ) -> HistoryView:
        """Written in the same transaction as each change: a committed change always has its
        entry, a rolled-back one never does."""
        gateway = gateway_of(request)
        found: HistoryView = await gateway.bus.send(
            EVENT_HISTORY.pattern,
            EventHistory(event_id=event_id),
            principal=principal_of(request),
            policy=gateway.policies.read_one,
        )
        return found

    @patch(
        "/{event_id:str}",
        operation_id="updateEvent",
        summary="Change an event's details (never its status)",
        responses=problem_responses(401, 403, 404, 409, 412, 413, 415, 422),
    )
    async def update(
        self,
        request: Request[Any, Any, Any],
        event_id: FromPath[str],
        data: JSONBody[EventChanges],
        idempotency_key: IdempotencyKey = None,
        if_match: IfMatch = None,
    ) -> Response[EventView]:
        versions = allowed_versions(if_match)
        command = UpdateEvent(event_id=event_id, changes=data, if_match=versions)
        return await _write(request, UPDATE_EVENT, command, idempotency_key)

    @delete(
        "/{event_id:str}",
        operation_id="deleteEvent",
        status_code=204,
        summary="Delete an event",
        responses=problem_responses(401, 403, 404, 409, 412, 422),
    )
    async def remove(
        self,
        request: Request[Any, Any, Any],
        event_id: FromPath[str],
        idempotency_key: IdempotencyKey = None,
        if_match: IfMatch = None,
    ) -> Response[None]:
        command = DeleteEvent(event_id=event_id, if_match=allowed_versions(if_match))
        return await _write(request, DELETE_EVENT, command, idempotency_key, 204)

    @post(
        "/{event_id:str}/submit",
        operation_id="submitEvent",
        status_code=200,
        summary="DRAFT -> SUBMITTED (creator only)",
        responses=problem_responses(401, 403, 404, 409, 412, 422),
    )
    async def submit(
        self,
        request: Request[Any, Any, Any],
        event_id: FromPath[str],
        idempotency_key: IdempotencyKey = None,
        if_match: IfMatch = None,
    ) -> Response[EventView]:
        command = SubmitEvent(event_id=event_id, if_match=allowed_versions(if_match))
        return await _write(request, SUBMIT_EVENT, command, idempotency_key)

    @post(
        "/{event_id:str}/approve",
        operation_id="approveEvent",
        status_code=200,
        summary="SUBMITTED -> APPROVED",
        responses=problem_responses(401, 403, 404, 409, 412, 422),
    )
    async def approve(
        self,
        request: Request[Any, Any, Any],
        event_id: FromPath[str],
        idempotency_key: IdempotencyKey = None,
        if_match: IfMatch = None,
    ) -> Response[EventView]:
        command = ApproveEvent(event_id=event_id, if_match=allowed_versions(if_match))
        return await _write(request, APPROVE_EVENT, command, idempotency_key)

    @post(
        "/{event_id:str}/reject",
        operation_id="rejectEvent",
        status_code=200,
        summary="SUBMITTED -> REJECTED, with a reason",
        responses=problem_responses(401, 403, 404, 409, 412, 413, 415, 422),
    )
    async def reject(
        self,
        request: Request[Any, Any, Any],
        event_id: FromPath[str],
        data: JSONBody[Rejection],
        idempotency_key: IdempotencyKey = None,
        if_match: IfMatch = None,
    ) -> Response[EventView]:
        versions = allowed_versions(if_match)
        command = RejectEvent(event_id=event_id, reason=data.reason, if_match=versions)
        return await _write(request, REJECT_EVENT, command, idempotency_key)


async def _write(
    request: Request[Any, Any, Any],
    command: Command,
    payload: object,
    idempotency_key: str | None,
    status_code: int = 200,
) -> Response[Any]:
    gateway = gateway_of(request)
    outcome = await gateway.bus.send_for_outcome(
        command.pattern,
        payload,
        principal=principal_of(request),
        idempotency_key=idempotency_key,
        policy=gateway.policies.write,
    )
    view = outcome.result
    if not isinstance(view, EventView):  # a delete: 204, nothing to tag
        return replied(outcome, status_code)
    headers = {ETAG: etag(view.version)}
    if status_code == 201:
        headers[LOCATION] = f"/events/{view.id}"
    return replied(outcome, status_code, headers)
