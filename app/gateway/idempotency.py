"""The `Idempotency-Key` request header and the `Idempotent-Replayed` response header.

The key itself is handled by the bus's idempotency middleware, in the module; here it is only
validated (1-255 printable ASCII characters, else 400), documented and passed along.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, TypeVar

from litestar import Response
from litestar.params import HeaderParameter

from app.bus.envelope import Outcome
from app.errors import FieldError

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_PATTERN = r"^[\x21-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?$"
"""1-255 printable ASCII characters, not starting or ending with a space (HTTP trims those)."""
_VALID = re.compile(KEY_PATTERN)

T = TypeVar("T")

IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name=HEADER,
        pattern=KEY_PATTERN,
        description=(
            "Makes the request safe to repeat: the same key with the same request returns the "
            "stored outcome (`Idempotent-Replayed: true`) without a second change; with another "
            "request, 422; while the first is still running, 409. Kept 24 h, per user."
        ),
    ),
]


def check_key(value: str | None) -> list[FieldError]:
    if value is None or _VALID.match(value):
        return []
    return [FieldError(field=HEADER, message=f"{HEADER} must be 1-255 printable ASCII characters")]


def replied(
    outcome: Outcome, status_code: int, headers: dict[str, str] | None = None
) -> Response[Any]:
    """The HTTP response for a command's outcome, marked when it was replayed."""
    if outcome.replayed:
        headers = {**(headers or {}), REPLAYED_HEADER: "true"}
    return Response(outcome.result, status_code=status_code, headers=headers)
