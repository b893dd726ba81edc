"""event version: bumped by every change of an event, the strong validator of its ETag

Added with a constant default, in place on SQLite (no table rebuild, so the search index's
triggers of migration 0003 stay).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "events_events", sa.Column("version", sa.Integer(), server_default="1", nullable=False)
    )


def downgrade() -> None:
    op.drop_column("events_events", "version")
