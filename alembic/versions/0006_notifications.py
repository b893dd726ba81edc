"""notifications: each emitting module's outbox, the events history, and the audit module's log,
inbox and dead letters

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.storage.schema import UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _outbox(module: str) -> None:
    op.create_table(
        f"{module}_outbox",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("pattern", sa.String(64), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("published_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f(f"pk_{module}_outbox")),
    )
    unpublished = sa.text("published_at IS NULL")
    op.create_index(
        f"ix_{module}_outbox_unpublished",
        f"{module}_outbox",
        ["seq"],
        sqlite_where=unpublished,
        postgresql_where=unpublished,
    )


def upgrade() -> None:
    _outbox("events")
    _outbox("auth")
    op.create_table(
        "events_history",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("organization_id", sa.String(36), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("actor_id", sa.String(80), nullable=False),
        sa.Column("actor_role", sa.String(16), nullable=True),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=True),
        sa.Column("changes", sa.Text(), nullable=True),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("correlation_id", sa.String(128), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events_history")),
    )
    op.create_index(
        "ix_events_history_org_event_at",
        "events_history",
        ["organization_id", "event_id", "at"],
    )
    op.create_table(
        "audit_entries",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("organization_id", sa.String(36), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("subject_type", sa.String(16), nullable=False),
        sa.Column("subject_id", sa.String(36), nullable=False),
        sa.Column("actor_id", sa.String(80), nullable=False),
        sa.Column("actor_role", sa.String(16), nullable=True),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=True),
        sa.Column("changes", sa.Text(), nullable=True),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("correlation_id", sa.String(128), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_entries")),
    )
    op.create_index("ix_audit_entries_org_at", "audit_entries", ["organization_id", "at", "id"])
    op.create_table(
        "audit_inbox",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("pattern", sa.String(64), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_inbox")),
        sa.UniqueConstraint("id", name=op.f("uq_audit_inbox_id")),
    )
    op.create_table(
        "audit_dead_letters",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("pattern", sa.String(64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("parked_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_dead_letters")),
    )


def downgrade() -> None:
    op.drop_table("audit_dead_letters")
    op.drop_table("audit_inbox")
    op.drop_index("ix_audit_entries_org_at", table_name="audit_entries")
    op.drop_table("audit_entries")
    op.drop_index("ix_events_history_org_event_at", table_name="events_history")
    op.drop_table("events_history")
    for module in ("auth", "events"):
        op.drop_index(f"ix_{module}_outbox_unpublished", table_name=f"{module}_outbox")
        op.drop_table(f"{module}_outbox")
