"""organization.time_zone: where an organization's days begin and end; and an index
for reading what moved a sprint's burndown without scanning the organization's log.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("organization", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("time_zone", sa.String(length=64), nullable=False, server_default="UTC")
        )
    op.create_index(
        "ix_task_event_sprint", "task_event", ["org_id", "sprint_id", "created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_task_event_sprint", table_name="task_event")
    with op.batch_alter_table("organization", schema=None) as batch_op:
        batch_op.drop_column("time_zone")
