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


def test_message_ids_are_distinct_within_and_across_processes() -> None:
    import subprocess
    import sys

    from app.bus.envelope import new_message_id

    mine = [new_message_id() for _ in range(2000)]
    other = subprocess.run(
        [sys.executable, "-c", "from app.bus.envelope import new_message_id as n; print(n())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert len(set(mine)) == len(mine)
    assert other not in mine
    assert other.rsplit("-", 1)[0] != mine[0].rsplit("-", 1)[0]  # another process, another prefix
