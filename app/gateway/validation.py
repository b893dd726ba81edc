"""Request validation at the edge, against the modules' contract Structs, reporting every field.

Runs as a `before_request` hook (after guards, before Litestar decodes anything), so one 400 lists
every offending field and parameter, unknown ones included, with the contracts' own messages.
Litestar then decodes the same, already valid, input for the handler.
"""

from __future__ import annotations

import re
import types
import typing
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request
from litestar.exceptions import HTTPException
from litestar.params import QueryParameter
from msgspec import UnsetType

from app.bus.contracts import CALENDAR_RULE, MAX_PAGE, SortOrder, written_within_calendar
from app.errors import FieldError, Invalid
from app.gateway.idempotency import HEADER, check_key

QUERY_OPT = "query"
"""`opt={"query": SomeStruct}` on a route declares its query parameters; other routes take none."""

# A listing route's paging and order parameters, as its handler declares them (the route's query
# contract, built on the same bounds in app.bus.contracts, is what checks them).
Page = Annotated[int, QueryParameter(ge=1, le=MAX_PAGE, description="Page number, from 1")]
Limit = Annotated[int, QueryParameter(ge=1, le=100, description="Page size, 1-100")]
Order = Annotated[SortOrder, QueryParameter(name="sortOrder")]

_TYPE_WORDS = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean",
    "object": "a JSON object",
    "array": "an array",
    "datetime": "an ISO 8601 date-time with a UTC offset",
    "null": "null",
}
_TYPE_MISMATCH = re.compile(r"^Expected `([^`]+)`(?:[^,]*)?, got `([^`]+)`")


async def validate_request(request: Request[Any, Any, Any]) -> None:
    """Every problem with the request's query, Idempotency-Key and body, in one 400. What a
    route does not take is not looked at (a GET with no query costs two lookups)."""
    errors: list[FieldError] = []
    handler = request.route_handler
    query_type = handler.opt.get(QUERY_OPT)
    if query_type is not None or request.scope["query_string"]:
        errors += check_query(list(request.query_params.multi_items()), query_type)

    if request.method in ("POST", "PATCH", "DELETE"):
        errors += check_key(request.headers.get(HEADER))

    data_field = handler.parsed_data_field
    if data_field is not None and isinstance(data_field.annotation, type):
        body = await request.body()
        check_media_type(request.headers.get("content-type"), body)
        errors += check_json_body(body, data_field.annotation)
    if errors:
        raise Invalid.fields(errors)


def check_query(items: list[tuple[str, str]], query_type: type[Any] | None) -> list[FieldError]:
    values: dict[str, Any] = {}
    errors: list[FieldError] = []
    for name, value in items:
        if name in values:
            shown = _shown(name)
            errors.append(FieldError(field=shown, message=f"{shown} must be given at most once"))
        values[name] = value
    if query_type is None:
        return errors + [
            FieldError(field=_shown(name), message=f"Unknown query parameter {_shown(name)!r}")
            for name in values
        ]
    types_by_name = {f.encode_name: _without_unset(f.type) for f in _fields(query_type)}
    present = {
        name: _query_value(value, types_by_name[name])
        for name, value in values.items()
        if name in types_by_name
    }
    errors += [
        FieldError(field=_shown(name), message=f"Unknown query parameter {_shown(name)!r}")
        for name in values
        if name not in types_by_name
    ]
    return errors + check_fields(present, query_type)


_DIGITS = re.compile(r"[0-9]{1,18}")


def _query_value(value: str, annotation: Any) -> Any:
    """A query string's value, read strictly: an integer parameter takes decimal digits only
    (not `1e3`, `+5` or `1.0`), a boolean `true` or `false` only; every other value stays a
    string, so a date-time must be an ISO 8601 string (not a bare number read as a Unix
    timestamp)."""
    if _DIGITS.fullmatch(value) and int in _base_types(annotation):
        return int(value)
    if value in _BOOLEANS and bool in _base_types(annotation):
        return _BOOLEANS[value]
    return value


_BOOLEANS = {"true": True, "false": False}


def _base_types(annotation: Any) -> set[Any]:
    if typing.get_origin(annotation) is typing.Annotated:
        return _base_types(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return set().union(*(_base_types(a) for a in typing.get_args(annotation)))
    return {annotation}


def check_media_type(content_type: str | None, body: bytes) -> None:
    """A body is JSON, said so: `application/json`, with no charset or `charset=utf-8` (RFC 8259:
    JSON is UTF-8). No body and no Content-Type is left to the body's own check (400)."""
    if content_type is None and not body:
        return
    media_type, _, parameters = (content_type or "").partition(";")
    charset = next(
        (
            value.strip().strip('"').lower()
            for name, _, value in (p.partition("=") for p in parameters.split(";"))
            if name.strip().lower() == "charset"
        ),
        "utf-8",
    )
    if media_type.strip().lower() != "application/json" or charset not in ("utf-8", "utf8"):
        raise HTTPException(
            status_code=415, detail="The request body must be JSON: Content-Type: application/json"
        )


def check_json_body(body: bytes, body_type: type[Any]) -> list[FieldError]:
    if _valid_at_once(body, body_type):
        return []
    if not body.strip():
        return [FieldError(field="body", message="A JSON object body is required")]
    try:
        data = msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError):
        # Also invalid UTF-8, and lone UTF-16 surrogates (`"\ud800"`), which nothing could store.
        raise Invalid("Malformed JSON in request body", code="MALFORMED_JSON") from None
    except RecursionError:
        raise Invalid("The request body is nested too deeply", code="MALFORMED_JSON") from None
    if not isinstance(data, dict):
        return [FieldError(field="body", message="The request body must be a JSON object")]
    known = {f.encode_name for f in _fields(body_type)}
    unknown = [
        FieldError(field=_shown(name), message=f"Unknown field {_shown(name)!r}")
        for name in data
        if name not in known
    ]
    return unknown + check_fields({k: v for k, v in data.items() if k in known}, body_type)


def _valid_at_once(body: bytes, body_type: type[Any]) -> bool:
    """The usual case: the body decodes into the contract as it is (unknown fields are refused
    by the contract itself) and its date-times lie within the calendar. Anything else gets the
    field-by-field check, which names every problem."""
    try:
        decoded = msgspec.json.decode(body, type=body_type)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):  # ValidationError too
        return False
    for field in _fields(body_type):
        value = getattr(decoded, field.name)
        if isinstance(value, datetime) and not written_within_calendar(value):
            return False
    return True


def check_fields(
    data: dict[str, Any], struct_type: type[Any], *, strict: bool = True
) -> list[FieldError]:
    """Check each field of `struct_type` on its own, so every problem is reported, not the first."""
    errors: list[FieldError] = []
    for field in _fields(struct_type):
        name = field.encode_name
        if name not in data:
            if field.required:
                errors.append(FieldError(field=name, message=f"{name} is required"))
            continue
        field_type = _without_unset(field.type)
        try:
            value = msgspec.convert(data[name], field_type, strict=strict)
        except msgspec.ValidationError as exc:
            message = _message(name, field_type, str(exc), data[name])
            errors.append(FieldError(field=name, message=message))
            continue
        if isinstance(value, datetime) and not written_within_calendar(value):
            errors.append(FieldError(field=name, message=f"{name} must be {CALENDAR_RULE}"))
    return errors


_FIELDS: dict[type[Any], tuple[msgspec.structs.FieldInfo, ...]] = {}


def _fields(struct_type: type[Any]) -> tuple[msgspec.structs.FieldInfo, ...]:
    """A contract's fields, resolved once (msgspec re-evaluates the annotations on every call)."""
    if struct_type not in _FIELDS:
        _FIELDS[struct_type] = msgspec.structs.fields(struct_type)
    return _FIELDS[struct_type]


def _shown(name: str) -> str:
    """A client-chosen name as echoed back in an error: at most 64 characters."""
    return name if len(name) <= 64 else name[:61] + "..."


def _without_unset(annotation: Any) -> Any:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        kept = tuple(a for a in args if a is not UnsetType)
        if len(kept) != len(args):
            return typing.Union[kept] if len(kept) > 1 else kept[0]  # noqa: UP007
    return annotation


def _message(name: str, annotation: Any, raw: str, value: Any) -> str:
    """The contract's message for a constraint, or a plain sentence for a type mismatch."""
    raw = raw.split(" - at `")[0]
    mismatch = _TYPE_MISMATCH.match(raw)
    if mismatch is not None:
        expected, got = mismatch.groups()
        if got == "null":
            return f"{name} must not be null"
        words = [_TYPE_WORDS.get(part, part) for part in expected.split(" | ")]
        return f"{name} must be {' or '.join(words)}"
    nul = "matching regex" in raw and isinstance(value, str) and "\x00" in value
    custom = _custom_message(annotation, "nul_message" if nul else "message")
    if custom is not None:
        return custom if custom.startswith(name) else f"{name} {custom}"
    return f"{name}: {raw.replace('`', '')}"


def _custom_message(annotation: Any, key: str) -> str | None:
    """The contract's own message for a failed constraint: `Meta(extra={"message": ...})`, and
    `"nul_message"` for text holding a NUL when the field has one."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if typing.get_origin(candidate) is typing.Annotated:
            for meta in typing.get_args(candidate)[1:]:
                if isinstance(meta, msgspec.Meta) and meta.extra:
                    message = meta.extra.get(key) or meta.extra.get("message")
                    if message is not None:
                        return str(message)
    return None
