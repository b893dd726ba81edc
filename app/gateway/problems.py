"""The one table from error category to HTTP status, and RFC 9457 problem+json responses.

Every error leaving the API goes through `problem()`: domain errors from the bus, Litestar's own
(unknown route, wrong method, body too large), and anything unexpected (500, logged with its
traceback server-side; the client sees no trace, SQL or class name).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import ExceptionHandlersMap
from loguru import logger

from app import correlation
from app.errors import AppError, Category, FieldError, RateLimited
from app.gateway.exchange import exchange_of
from app.gateway.idempotency import REPLAYED_HEADER

PROBLEM_JSON = "application/problem+json"

STATUS_BY_CATEGORY: dict[Category, int] = {
    Category.INVALID: 400,
    Category.UNAUTHORIZED: 401,
    Category.FORBIDDEN: 403,
    Category.NOT_FOUND: 404,
    Category.CONFLICT: 409,
    Category.MISMATCH: 422,
    Category.PRECONDITION_FAILED: 412,
    Category.RATE_LIMITED: 429,
    Category.INTERNAL: 500,
    Category.UNAVAILABLE: 503,
    Category.OVERLOADED: 503,
    Category.TIMEOUT: 504,
}

_CODE_BY_STATUS = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "ROUTE_NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
}


class FieldProblem(msgspec.Struct, frozen=True, kw_only=True):
    field: str
    message: str


class Problem(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, rename="camel"):
    """RFC 9457 problem details, as every error response carries them."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    correlation_id: str
    errors: list[FieldProblem] | None = None


def problem_body(status: int, code: str, detail: str, errors: tuple[FieldError, ...] = ()) -> bytes:
    body = Problem(
        type=f"urn:eventboard:problem:{code.lower().replace('_', '-')}",
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        code=code,
        correlation_id=correlation.correlation_id.get() or "-",
        errors=[FieldProblem(field=e.field, message=e.message) for e in errors] or None,
    )
    return msgspec.json.encode(body)


def problem(
    status: int,
    code: str,
    detail: str,
    errors: tuple[FieldError, ...] = (),
    headers: dict[str, str] | None = None,
) -> Response[bytes]:
    return Response(
        content=problem_body(status, code, detail, errors),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


class RateLimitExceeded(RateLimited):
    """429, with the figures of the limit for the RateLimit-* response headers."""

    def __init__(self, message: str, *, limit: int, reset_in: float) -> None:
        super().__init__(message, retry_after=max(1.0, reset_in))
        self.limit = limit

    def headers(self) -> dict[str, str]:
        reset = str(max(1, round(self.retry_after or 1)))
        return {
            "Retry-After": reset,
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": reset,
        }


def _answered(request: Request[Any, Any, Any], code: str) -> None:
    """The request's log line names the problem it answered."""
    exchange = exchange_of(request.scope)
    if exchange is not None:
        exchange.problem = code


def app_error_response(request: Request[Any, Any, Any], exc: AppError) -> Response[bytes]:
    status = STATUS_BY_CATEGORY[exc.category]
    headers: dict[str, str] = {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    if exc.replayed:
        headers[REPLAYED_HEADER] = "true"
    if isinstance(exc, RateLimitExceeded):
        headers.update(exc.headers())
    if status == 401:
        headers["WWW-Authenticate"] = (
            'Bearer error="invalid_token"' if "authorization" in request.headers else "Bearer"
        )
    _answered(request, exc.code)
    return problem(status, exc.code, exc.message, exc.errors, headers or None)


def validation_response(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[bytes]:
    """Litestar's own parameter validation; the gateway's validator normally answers first."""
    errors = tuple(
        FieldError(field=str(item.get("key", "")), message=str(item.get("message", "")))
        for item in (exc.extra if isinstance(exc.extra, list) else [])
        if isinstance(item, dict)
    )
    _answered(request, "VALIDATION_FAILED")
    return problem(400, "VALIDATION_FAILED", "Validation failed", errors)


def http_error_response(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    status = exc.status_code
    if status >= 500:
        _answered(request, "INTERNAL_ERROR")
        return problem(status, "INTERNAL_ERROR", "Internal server error")
    code = _CODE_BY_STATUS.get(status, "HTTP_ERROR")
    _answered(request, code)
    detail = {
        404: "Route not found",
        413: "Request body is too large",
    }.get(status, exc.detail or HTTPStatus(status).phrase)
    headers = {k: v for k, v in (exc.headers or {}).items() if k.lower() == "allow"}
    return problem(status, code, detail, headers=headers or None)


def unexpected_error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    logger.opt(exception=exc).error("unhandled error")
    _answered(request, "INTERNAL_ERROR")
    return problem(500, "INTERNAL_ERROR", "Internal server error")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    AppError: app_error_response,
    ValidationException: validation_response,
    HTTPException: http_error_response,
    Exception: unexpected_error_response,
}


_DESCRIPTIONS = {
    400: "Malformed JSON, a field or parameter that fails validation, or a bad header value",
    401: "Missing, invalid or expired token; or wrong credentials",
    403: "Authenticated, but not allowed (role, ownership or the event's status)",
    404: "Unknown id, or one that belongs to another organization",
    409: "Invalid workflow transition, duplicate, or the same Idempotency-Key still in flight",
    412: "If-Match names a version that is no longer current: nothing changed",
    413: "Request body over the size limit",
    415: "A body sent with a Content-Type other than application/json",
    422: "Idempotency-Key reused with a different request",
    429: "Rate limit exceeded (Retry-After, RateLimit-* headers)",
    503: "Module unavailable, circuit open or shutting down (Retry-After)",
    504: "The module did not answer within the route's deadline",
}
ALWAYS = (400, 429, 503, 504)
"""Statuses any operation can answer with."""


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI responses for the given error statuses (plus ALWAYS), all problem+json."""
    return {
        status: ResponseSpec(
            data_container=Problem,
            description=_DESCRIPTIONS[status],
            media_type=PROBLEM_JSON,
            generate_examples=False,
        )
        for status in sorted({*ALWAYS, *statuses})
    }
