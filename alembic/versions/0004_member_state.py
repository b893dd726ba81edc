"""member state: whether a member is active, and the version of their row

`active`: a deactivated member cannot log in and their tokens stop working (the rows and their
events stay). `version`: bumped by every change of the member (role, active), the strong
validator of the member's ETag. Both are added with a constant default, which SQLite adds in
place (no table rebuild).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 22:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "auth_users", sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False)
    )
    op.add_column(
        "auth_users", sa.Column("version", sa.Integer(), server_default="1", nullable=False)
    )


def downgrade() -> None:
    with op.batch_alter_table("auth_users") as batch_op:
        batch_op.drop_column("version")
        batch_op.drop_column("active")
