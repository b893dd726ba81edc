"""The published OpenAPI document: Litestar's, generated from the routes, made exact.

The schema is the contract: a request it allows is one the server accepts, a request it forbids
is one the server refuses, and every response is described as it is sent. Rules JSON Schema
cannot state (an end after a start, a password's 72 bytes) are named in `schemathesis.toml`,
which runs the check in the test suite. Litestar gets the routes, operations and security right;
this module adds what it cannot know:

- Component schemas are msgspec's own for the contracts (unknown fields refused, trimmed-text
  and calendar rules as patterns, formats), so the schema and the decoder cannot disagree.
- A route's query parameters are the properties of its query contract (`opt={"query": ...}`).
- Sign-up takes exactly one of `organizationId` and `organizationName` (`oneOf`).
- 204 has no body; `/metrics` is Prometheus text; the Idempotency-Key header is a string with
  its pattern.
- The response headers a client may rely on, on every response where they are sent.
- Request examples that the server accepts ("Try it out" works as it comes).
"""

from __future__ import annotations

import copy
from typing import Any

import msgspec
from litestar import Litestar, Request
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.routes import HTTPRoute

from app.gateway.conditional import ETAG, LOCATION
from app.gateway.controllers.health import HealthReport, Liveness
from app.gateway.idempotency import HEADER, KEY_PATTERN, REPLAYED_HEADER
from app.gateway.problems import Problem
from app.gateway.validation import QUERY_OPT
from app.modules.audit.contracts import AuditPage
from app.modules.auth.contracts import (
    LogIn,
    LoginView,
    MemberPage,
    MemberView,
    MeView,
    OrganizationDetails,
    RoleChange,
    SignUp,
    SignUpView,
)
from app.modules.events.contracts import (
    CreateEvent,
    EventChanges,
    EventPage,
    HistoryView,
    Rejection,
)

_REF = "#/components/schemas/{name}"
CONTRACTS: tuple[type[Any], ...] = (
    CreateEvent,
    EventChanges,
    Rejection,
    EventPage,
    SignUp,
    LogIn,
    SignUpView,
    LoginView,
    MeView,
    OrganizationDetails,
    MemberPage,
    MemberView,
    RoleChange,
    HistoryView,
    AuditPage,
    Problem,
    HealthReport,
    Liveness,
)
"""Every type a route takes or answers with; a schema Litestar names that is not among these
(or reached from them) fails the app's start, rather than going out unchecked."""

EXAMPLES: dict[str, dict[str, Any]] = {
    "signUp": {
        "email": "new.person@acme.com",
        "password": "Secret123!",
        "firstName": "Ada",
        "lastName": "Lovelace",
        "organizationName": "Analytical Engines",
    },
    "logIn": {"email": "admin@acme.com", "password": "Password123!"},
    "createEvent": {
        "title": "Team offsite",
        "description": "A day of planning for the next quarter.",
        "location": "Room 4",
        "startDate": "2026-06-15T09:00:00.000Z",
        "endDate": "2026-06-15T17:00:00.000Z",
    },
    "updateEvent": {"title": "Team offsite, day two"},
    "rejectEvent": {"reason": "The date clashes with the audit."},
    "changeMemberRole": {"role": "MODERATOR"},
}

_APPROVED: dict[str, Any] = {
    "id": "4f6c1c7e-0b1a-4c86-9a43-3b8f6f1d2a10",
    "action": "event.approved",
    "subjectType": "event",
    "subjectId": "00000000-0000-0000-0000-000000000002",
    "actorId": "20000000-0000-0000-0000-000000000002",
    "actorRole": "MODERATOR",
    "fromStatus": "SUBMITTED",
    "toStatus": "APPROVED",
    "changes": None,
    "reason": None,
    "correlationId": "req-7f3a",
    "at": "2026-06-01T10:00:00.000Z",
}
_UPDATED: dict[str, Any] = {
    **_APPROVED,
    "id": "0c9b7a52-5d1e-4f07-8f0e-6a2b9d4e1c33",
    "action": "event.updated",
    "actorId": "20000000-0000-0000-0000-000000000003",
    "actorRole": "USER",
    "fromStatus": "DRAFT",
    "toStatus": "DRAFT",
    "changes": {"title": {"from": "Team offsite", "to": "Team offsite, day two"}},
    "at": "2026-05-30T08:12:00.000Z",
}
RESPONSE_EXAMPLES: dict[str, dict[str, Any]] = {
    "getEventHistory": {"data": [_UPDATED, _APPROVED]},
    "listAudit": {
        "data": [_APPROVED, _UPDATED],
        "meta": {
            "page": 1,
            "limit": 10,
            "total": 2,
            "totalPages": 1,
            "hasPrevious": False,
            "hasNext": False,
        },
    },
}
"""Answers shown in the docs, for routes whose fields say more by example."""
"""Request bodies by operationId, as "Try it out" sends them (the demo login is the seeds')."""

Header = tuple[bool, str, dict[str, Any]]
"""A documented response header: required, description, schema."""
_DIGITS: dict[str, Any] = {"type": "string", "pattern": r"^\d+$"}
_ALWAYS: dict[str, Header] = {
    "X-Correlation-ID": (
        True,
        "The request's correlation id: the one sent (when valid), else a new one",
        {"type": "string", "pattern": r"^[A-Za-z0-9._:-]{1,128}$"},
    ),
    "X-Response-Time": (
        True,
        "Time spent in the server, e.g. `12.3ms`",
        {"type": "string", "pattern": r"^\d+\.\dms$"},
    ),
}
_RATE_LIMITED: dict[str, Header] = {
    "RateLimit-Limit": (False, "Requests allowed per window (when the limit is on)", _DIGITS),
    "RateLimit-Remaining": (False, "Requests left in the current window", _DIGITS),
    "RateLimit-Reset": (False, "Seconds until the window resets", _DIGITS),
}
_UNLIMITED_PATHS = ("/health", "/metrics")
TAGGED = frozenset(
    {
        "createEvent",
        "getEvent",
        "updateEvent",
        "submitEvent",
        "approveEvent",
        "rejectEvent",
        "getMember",
        "changeMemberRole",
        "deactivateMember",
        "reactivateMember",
    }
)
"""Operations whose success carries one event or member, with its `ETag`."""
_ETAG: Header = (
    True,
    'The version of the event or member in the body: a strong validator (`"3"`) for If-Match',
    {"type": "string", "pattern": r'^"\d+"$'},
)


class Publisher:
    """The exact document for a generated one, worked out once."""

    def __init__(self) -> None:
        self._source: dict[str, Any] | None = None
        self._published: dict[str, Any] = {}

    def __call__(self, app: Litestar, generated: dict[str, Any]) -> dict[str, Any]:
        if self._source is not generated:
            self._published = publish(generated, query_contracts(app))
            self._source = generated
        return self._published


class ContractJsonPlugin(JsonRenderPlugin):
    """`/api/openapi.json`: the published document."""

    def __init__(self, publisher: Publisher) -> None:
        super().__init__()
        self._publisher = publisher

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, self._publisher(request.app, openapi_schema))


class ContractSwaggerPlugin(SwaggerRenderPlugin):
    """`/api`: Swagger UI with the published document embedded."""

    def __init__(self, publisher: Publisher, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._publisher = publisher

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, self._publisher(request.app, openapi_schema))


def query_contracts(app: Litestar) -> dict[str, type[Any]]:
    """operationId -> the contract of the operation's query parameters."""
    found: dict[str, type[Any]] = {}
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            for handler in route.route_handlers:
                query = handler.opt.get(QUERY_OPT)
                if query is not None and isinstance(handler.operation_id, str):
                    found[handler.operation_id] = query
    return found


def publish(generated: dict[str, Any], queries: dict[str, type[Any]]) -> dict[str, Any]:
    doc = copy.deepcopy(generated)
    schemas, components = msgspec.json.schema_components(
        (*CONTRACTS, *queries.values()), ref_template=_REF
    )
    query_schemas = {
        operation: components.pop(schema["$ref"].rsplit("/", 1)[1])
        for operation, schema in zip(queries, schemas[len(CONTRACTS) :], strict=True)
    }
    unchecked = set(doc.get("components", {}).get("schemas", {})) - set(components)
    if unchecked:
        raise RuntimeError(f"OpenAPI schemas with no contract in CONTRACTS: {sorted(unchecked)}")
    _one_organization(components["SignUp"])
    doc.setdefault("components", {})["schemas"] = components

    for path, operations in doc["paths"].items():
        for operation in operations.values():
            operation_id = operation.get("operationId")
            keyed = False
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query" and operation_id in query_schemas:
                    parameter["schema"] = _not_null(
                        query_schemas[operation_id]["properties"][parameter["name"]]
                    )
                elif parameter["in"] == "header" and parameter["name"] == HEADER:
                    parameter["schema"] = {"type": "string", "pattern": KEY_PATTERN}
                    keyed = True
            example = EXAMPLES.get(operation_id or "")
            if example is not None:
                operation["requestBody"]["content"]["application/json"]["example"] = example
            answer = RESPONSE_EXAMPLES.get(operation_id or "")
            if answer is not None:
                operation["responses"]["200"]["content"]["application/json"]["example"] = answer
            for status, response in operation["responses"].items():
                if status == "204":
                    response.pop("content", None)
                response["headers"] = _headers(path, int(status), keyed=keyed)
                if operation_id in TAGGED and status in ("200", "201", "304"):
                    response["headers"][ETAG] = _header(_ETAG)
                if status == "201":
                    response["headers"][LOCATION] = _header(
                        (True, "The new resource's path", {"type": "string", "pattern": "^/"})
                    )

    metrics = doc["paths"].get("/metrics", {}).get("get")
    if metrics is not None:
        metrics["operationId"] = "getMetrics"
        metrics["responses"]["200"]["content"] = {"text/plain": {"schema": {"type": "string"}}}
    return doc


def _one_organization(sign_up: dict[str, Any]) -> None:
    """Join (`organizationId`) or found (`organizationName`): exactly one, as a string; the
    other absent or null."""
    sign_up["oneOf"] = [
        {"required": [name], "properties": {name: {"type": "string"}}}
        for name in ("organizationId", "organizationName")
    ]


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema without the `null` of an optional field (a query string has
    no null), keeping its default."""
    options = schema.get("anyOf")
    if options is None:
        return schema
    kept = [option for option in options if option != {"type": "null"}]
    rest = {k: v for k, v in schema.items() if k != "anyOf" and (k, v) != ("default", None)}
    return {**kept[0], **rest} if len(kept) == 1 else {"anyOf": kept, **rest}


def _headers(path: str, status: int, *, keyed: bool) -> dict[str, Any]:
    headers: dict[str, Header] = dict(_ALWAYS)
    if not path.startswith(_UNLIMITED_PATHS):
        headers |= _RATE_LIMITED
    if status == 401:
        headers["WWW-Authenticate"] = (
            True,
            '`Bearer`, or `Bearer error="invalid_token"` when a token was sent',
            {"type": "string", "pattern": "^Bearer"},
        )
    if status in (429, 503):
        headers["Retry-After"] = (status == 429, "Seconds to wait before trying again", _DIGITS)
    if keyed:
        headers[REPLAYED_HEADER] = (
            False,
            "`true` when this is the stored outcome of an earlier request with the same key",
            {"type": "string", "enum": ["true"]},
        )
    return {name: _header(header) for name, header in headers.items()}


def _header(header: Header) -> dict[str, Any]:
    required, description, schema = header
    return {"required": required, "description": description, "schema": schema}
