"""Application errors: a stable `code`, a category, a human message. No HTTP here.

Errors cross the bus as `ErrorData` and are rebuilt on the send side with `AppError.from_data`;
the gateway maps categories to HTTP statuses in one table.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

import msgspec


class Category(StrEnum):
    INVALID = "invalid"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    MISMATCH = "mismatch"
    PRECONDITION_FAILED = "precondition_failed"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    OVERLOADED = "overloaded"
    TIMEOUT = "timeout"
    INTERNAL = "internal"


class FieldError(msgspec.Struct, frozen=True, kw_only=True):
    field: str
    message: str


class ErrorData(msgspec.Struct, frozen=True, kw_only=True):
    """An error as it travels between processes."""

    code: str
    category: Category
    message: str
    errors: tuple[FieldError, ...] = ()
    retryable: bool = False
    retry_after: float | None = None


class AppError(Exception):
    category: ClassVar[Category] = Category.INTERNAL
    default_code: ClassVar[str] = "INTERNAL_ERROR"
    default_message: ClassVar[str] = "Internal server error"
    transient: ClassVar[bool] = False

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        errors: tuple[FieldError, ...] = (),
        retry_after: float | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.code = code or self.default_code
        self.errors = errors
        self.retry_after = retry_after
        self.replayed = False
        """Set when this is a stored outcome replayed for a repeated idempotency key."""
        super().__init__(self.message)

    def to_data(self) -> ErrorData:
        return ErrorData(
            code=self.code,
            category=self.category,
            message=self.message,
            errors=self.errors,
            retryable=self.transient,
            retry_after=self.retry_after,
        )

    @staticmethod
    def from_data(data: ErrorData) -> AppError:
        cls = _BY_CATEGORY.get(data.category, Internal)
        return cls(data.message, code=data.code, errors=data.errors, retry_after=data.retry_after)


class Invalid(AppError):
    category = Category.INVALID
    default_code = "VALIDATION_FAILED"
    default_message = "Validation failed"

    @classmethod
    def fields(cls, errors: list[FieldError] | tuple[FieldError, ...]) -> Invalid:
        """One VALIDATION_FAILED error whose detail sums up every offending field."""
        if len(errors) == 1:
            message = errors[0].message
        else:
            message = f"Validation failed: {'; '.join(e.message for e in errors)}"
        return cls(message, errors=tuple(errors))


class Unauthorized(AppError):
    category = Category.UNAUTHORIZED
    default_code = "UNAUTHORIZED"
    default_message = "Unauthorized"


class AuthenticationRequired(Unauthorized):
    """No caller where one is needed: no bearer token at the edge, no principal on a command."""

    default_code = "AUTH_REQUIRED"
    default_message = "Authentication required"


class Forbidden(AppError):
    category = Category.FORBIDDEN
    default_code = "FORBIDDEN"
    default_message = "Forbidden"


class NotFound(AppError):
    category = Category.NOT_FOUND
    default_code = "NOT_FOUND"
    default_message = "Not found"


class Conflict(AppError):
    category = Category.CONFLICT
    default_code = "CONFLICT"
    default_message = "Conflict"


class PreconditionFailed(AppError):
    """The request was conditional (If-Match) on a version that is no longer current."""

    category = Category.PRECONDITION_FAILED
    default_code = "PRECONDITION_FAILED"
    default_message = "The resource has changed since you read it: read it again (If-Match)"


class Mismatch(AppError):
    category = Category.MISMATCH
    default_code = "UNPROCESSABLE"
    default_message = "Unprocessable request"


class RateLimited(AppError):
    category = Category.RATE_LIMITED
    default_code = "RATE_LIMITED"
    default_message = "Too many requests"


class Unavailable(AppError):
    category = Category.UNAVAILABLE
    default_code = "SERVICE_UNAVAILABLE"
    default_message = "Service unavailable"
    transient = True


class Overloaded(AppError):
    """Refused at once because this process has more of such work than it can finish in time
    (admission control). Not a failure of the dependency: breakers do not count it, and the bus
    does not retry it (retrying is how overload grows); the client is told when to come back."""

    category = Category.OVERLOADED
    default_code = "OVERLOADED"
    default_message = "The service is busy; try again shortly"


class Timeout(AppError):
    category = Category.TIMEOUT
    default_code = "UPSTREAM_TIMEOUT"
    default_message = "The service did not answer in time"
    transient = True


class Internal(AppError):
    category = Category.INTERNAL


_BY_CATEGORY: dict[Category, type[AppError]] = {
    cls.category: cls
    for cls in (
        Invalid,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        Mismatch,
        PreconditionFailed,
        RateLimited,
        Unavailable,
        Overloaded,
        Timeout,
        Internal,
    )
}
