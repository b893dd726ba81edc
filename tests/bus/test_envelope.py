"""Message and correlation ids: random UUIDv4 text, as `uuid.uuid4()` would give."""

from __future__ import annotations

import uuid

from app.bus.envelope import new_id


def test_new_ids_are_distinct_version_4_uuids_in_canonical_form() -> None:
    ids = [new_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == text
