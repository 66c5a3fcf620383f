"""Keeping the board tidy: tasks and stories can be archived (and restored), and the
log records a task's move to another story and why an owner freed a task.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 13:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.add_column(sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("story", schema=None) as batch_op:
        batch_op.add_column(sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("task_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("to_story_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("reason", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("task_event", schema=None) as batch_op:
        batch_op.drop_column("reason")
        batch_op.drop_column("to_story_id")
    with op.batch_alter_table("story", schema=None) as batch_op:
        batch_op.drop_column("archived_at")
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_column("archived_at")
