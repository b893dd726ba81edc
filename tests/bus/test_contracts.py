"""Text rules live in one regex that the schema publishes: it must agree with trimming."""

from __future__ import annotations

import re

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from app.bus.contracts import SPACE_CHARS, trimmed
from app.modules.events.contracts import CreateEvent

spaces = st.sampled_from(SPACE_CHARS)
texts = st.lists(st.one_of(spaces, st.characters(), st.just("\x00")), max_size=12).map("".join)


@given(text=texts, bounds=st.sampled_from([(0, 5), (1, 5), (2, 5), (3, 8), (0, 1), (1, 1)]))
def test_the_pattern_accepts_exactly_what_trimming_and_counting_accept(text, bounds):
    low, high = bounds
    expected = "\x00" not in text and low <= len(text.strip(SPACE_CHARS)) <= high

    assert bool(re.fullmatch(trimmed(low, high), text)) == expected


def test_every_unicode_space_python_strips_is_in_the_rule():
    python_spaces = {chr(c) for c in range(0x110000) if chr(c).isspace()}

    assert python_spaces <= set(SPACE_CHARS)


def test_contracts_arrive_trimmed_from_the_wire():
    event = msgspec.json.decode(
        b'{"title": "  Trimmed  ", "description": "\\u00a0ten chars!\\n",'
        b' "startDate": "2026-01-01T00:00:00Z", "endDate": "2026-01-02T00:00:00Z"}',
        type=CreateEvent,
    )

    assert (event.title, event.description) == ("Trimmed", "ten chars!")
