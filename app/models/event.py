"""The event log: one row per change, written in the change's own transaction."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, utcnow
from app.models.account import User


class TaskEvent(Base):
    """Who did what to which task, from which status to which, and when.

    `id` is numbered per organization (1, 2, 3, … in commit order; see
    app.events.log.append_event), so (org_id, id) is the key. The same number is the
    SSE `id:`, the JSON event id and the id shown in a task's history.
    """

    __tablename__ = "task_event"
    __table_args__ = (
        Index("ix_task_event_task_id_id", "task_id", "id"),
        # A sprint's burndown reads what moved it since its first day (app/tasks/burndown).
        Index("ix_task_event_sprint", "org_id", "sprint_id", "created_at"),
    )

    org_id: Mapped[int] = mapped_column(
        ForeignKey("organization.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    type: Mapped[str] = mapped_column(String(40))
    task_id: Mapped[int | None] = mapped_column(ForeignKey("task.id", ondelete="SET NULL"))
    story_id: Mapped[int | None] = mapped_column(ForeignKey("story.id", ondelete="SET NULL"))
    # No foreign keys to sprints: the log keeps the ids of the sprints it names, even of
    # one deleted since (a planned sprint can be).
    sprint_id: Mapped[int | None]
    # A move (story_moved, task_moved, sprint_completed): `sprint_id` is where the tasks
    # were, `to_sprint_id` where they went (None: the backlog), `task_ids` which ones.
    # Archiving is a move out of `sprint_id` to nowhere, restoring one from nowhere into
    # `to_sprint_id` (app/tasks/tidying.py).
    to_sprint_id: Mapped[int | None]
    # A task moved to another story: `story_id` is the one it left.
    to_story_id: Mapped[int | None]
    task_ids: Mapped[list[int] | None] = mapped_column(JSON)
    # How many of `task_ids` were completed when they moved (the burndowns of both
    # sprints move by the rest: app/tasks/burndown.py).
    done_count: Mapped[int | None]
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    previous_owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL")
    )
    old_status: Mapped[str | None] = mapped_column(String(16))
    new_status: Mapped[str | None] = mapped_column(String(16))
    # The task's title when it happened, so history and toasts read well later.
    title: Mapped[str] = mapped_column(String(200), default="")
    # What an edit changed (task_updated, story_updated): field names, comma-separated.
    fields: Mapped[str] = mapped_column(String(400), default="", server_default="")
    # Why an organization owner freed someone else's task (ownership_released).
    reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    actor: Mapped[User | None] = relationship(foreign_keys=[actor_id], lazy="joined")
