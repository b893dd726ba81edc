"""The gateway reads msgspec's English error texts (it has no structured form): each kind of text
it recognises is pinned here, from msgspec itself, so an upgrade that rewords one fails this
test rather than a client's error message."""

from __future__ import annotations

import pytest

from app.gateway.validation import check_fields, check_query
from app.modules.auth.contracts import SignUp
from app.modules.events.contracts import CreateEvent, ListEvents

VALID = {
    "title": "Team offsite",
    "description": "A day of planning.",
    "startDate": "2026-06-15T09:00:00Z",
    "endDate": "2026-06-15T17:00:00Z",
}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("title", 12, "title must be a string"),  # Expected `str`, got `int`
        ("title", None, "title must not be null"),  # ... got `null`
        ("title", "ab", "title must be 3-200 characters long"),  # ... matching regex
        ("title", "a\x00bc", "title must not contain NUL characters"),  # the same, with a NUL
        ("location", ["x"], "location must be a string or null"),  # `str | null`, got `array`
        ("startDate", "tomorrow", "startDate must be an ISO 8601 date-time with a UTC offset"),
        (
            "startDate",
            "2026-06-15T09:00:00",
            "startDate must be an ISO 8601 date-time with a UTC offset",
        ),
        ("endDate", 5, "endDate must be an ISO 8601 date-time with a UTC offset"),
    ],
)
def test_each_msgspec_text_becomes_the_contracts_message(field, value, message):
    errors = check_fields({**VALID, field: value}, CreateEvent)

    assert [(e.field, e.message) for e in errors] == [(field, message)]


def test_a_constraint_message_from_meta_and_a_type_word():
    query = check_query([("page", "0"), ("limit", "x"), ("sortOrder", "up")], ListEvents)
    sign_up = check_fields(
        {"email": "a@b.c", "password": "short", "firstName": "Ada", "lastName": "Lovelace"},
        SignUp,
    )

    assert [(e.field, e.message) for e in query] == [
        ("page", "page must be an integer from 1 to 1000000"),  # Expected `int` >= 1
        ("limit", "limit must be an integer"),  # Expected `int`, got `str`
        ("sortOrder", "sortOrder must be asc or desc"),  # Invalid enum value
    ]
    assert [e.field for e in sign_up] == ["password"]
    assert sign_up[0].message.startswith("password must be 8-72 characters")
