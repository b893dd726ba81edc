"""The audit log's table, and the module's inbox and dead letters (`app.bus.subscribers`).

An entry is written only by the module's subscribers, from the notifications the events and
auth modules emit; nothing here reads another module's tables. An entry's id is the id of the
notification it records, so even without the inbox a notification could not be entered twice."""

from __future__ import annotations

from sqlalchemy import Column, Index, String, Table, Text

from app.bus.subscribers import dead_letter_table, inbox_table
from app.storage.schema import Base, UTCDateTime

ENTRIES = Table(
    "audit_entries",
    Base.metadata,
    Column("id", String(36), primary_key=True),
    Column("organization_id", String(36), nullable=False),
    Column("action", String(32), nullable=False),
    Column("subject_type", String(16), nullable=False),
    Column("subject_id", String(36), nullable=False),
    Column("actor_id", String(80), nullable=False),
    Column("actor_role", String(16)),
    Column("from_status", String(16)),
    Column("to_status", String(16)),
    Column("changes", Text),  # {field: {from, to}} as JSON
    Column("reason", String(500)),
    Column("correlation_id", String(128), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("recorded_at", UTCDateTime(), nullable=False),
    Index("ix_audit_entries_org_at", "organization_id", "at", "id"),
)

INBOX = inbox_table("audit")
DEAD_LETTERS = dead_letter_table("audit")
