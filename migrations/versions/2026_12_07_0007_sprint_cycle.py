"""The sprint cycle: a task knows its sprint (a story's unfinished tasks can be carried
into the next sprint while its completed ones stay in the closed one), a sprint keeps
when it completed and its frozen report, and the log records moves.

The log keeps the ids of the sprints it names, even of one deleted since: its foreign
key to sprints goes (it would blank them, and the story moves that emptied a deleted
sprint would say "from nowhere to nowhere").

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 10:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sprint_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_task_sprint_id"), ["sprint_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_task_sprint_id_sprint"),
            "sprint",
            ["sprint_id"],
            ["id"],
            ondelete="SET NULL",
        )
    # Until now a task was in its story's sprint.
    op.execute(
        "UPDATE task SET sprint_id ="
        " (SELECT story.sprint_id FROM story WHERE story.id = task.story_id)"
    )
    with op.batch_alter_table("sprint", schema=None) as batch_op:
        batch_op.add_column(sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("report", sa.JSON(), nullable=True))
    with op.batch_alter_table("task_event", schema=None) as batch_op:
        batch_op.drop_constraint("fk_task_event_sprint_id_sprint", type_="foreignkey")
        batch_op.add_column(sa.Column("to_sprint_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("task_ids", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("done_count", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("task_event", schema=None) as batch_op:
        batch_op.drop_column("done_count")
        batch_op.drop_column("task_ids")
        batch_op.drop_column("to_sprint_id")
    # Events naming a sprint deleted since cannot point at it again.
    op.execute(
        "UPDATE task_event SET sprint_id = NULL"
        " WHERE sprint_id IS NOT NULL AND sprint_id NOT IN (SELECT id FROM sprint)"
    )
    with op.batch_alter_table("task_event", schema=None) as batch_op:
        batch_op.create_foreign_key(
            "fk_task_event_sprint_id_sprint",
            "sprint",
            ["sprint_id"],
            ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("sprint", schema=None) as batch_op:
        batch_op.drop_column("report")
        batch_op.drop_column("completed_at")
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_task_sprint_id_sprint"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_task_sprint_id"))
        batch_op.drop_column("sprint_id")
