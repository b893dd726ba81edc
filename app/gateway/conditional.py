"""Conditional requests on one event or one member: the `ETag` of its current version,
`If-Match` on the requests that change it (412 when it changed since the client read it) and
`If-None-Match` on `GET /events/{id}` (304 when the client's copy is current).

The version is the module's (bumped by every change, in the same transaction); the comparison
that matters for writes happens in the module, inside that transaction, on the row it locked.
"""

from __future__ import annotations

import re
from typing import Annotated

from litestar.params import HeaderParameter

ETAG = "ETag"
LOCATION = "Location"
_STRONG = re.compile(r'^"(\d{1,18})"$')
_ANY = re.compile(r'^(?:W/)?"(\d{1,18})"$')

IfMatch = Annotated[
    str | None,
    HeaderParameter(
        name="If-Match",
        description=(
            'Change it only if it is still at this version: the `ETag` you read (`"3"`), or '
            "several, comma-separated. Otherwise 412 `PRECONDITION_FAILED` and nothing changes."
        ),
    ),
]
IfNoneMatch = Annotated[
    str | None,
    HeaderParameter(
        name="If-None-Match",
        description="The `ETag` of the copy you hold: 304 with no body while it is current.",
    ),
]


def allowed_versions(if_match: str | None) -> tuple[int, ...] | None:
    """The versions an If-Match allows; None when it sets no condition (absent, or `*`: any
    current version). Weak or malformed tags allow nothing (If-Match compares strongly), so
    such a request is 412."""
    if if_match is None or if_match.strip() == "*":
        return None
    return tuple(
        int(found.group(1))
        for tag in if_match.split(",")
        if (found := _STRONG.match(tag.strip())) is not None
    )


def etag(version: int) -> str:
    return f'"{version}"'


def is_current(if_none_match: str | None, version: int) -> bool:
    """If-None-Match names the current version (weak comparison, as RFC 9110 asks), or `*`."""
    if if_none_match is None:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(
        (found := _ANY.match(tag.strip())) is not None and int(found.group(1)) == version
        for tag in if_none_match.split(",")
    )
