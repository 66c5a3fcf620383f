"""Tasks. Their life cycle lives in app.tasks.lifecycle; the invariants live here too,
as database constraints, so no code path can write an impossible task."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, Text
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql import ColumnElement

from app.db import Base, UTCDateTime, utcnow
from app.models.account import User
from app.models.planning import Story


class TaskStatus(enum.StrEnum):
    """The four states of a task, in board order."""

    AVAILABLE = "available"
    OWNED = "owned"
    INPROGRESS = "inprogress"
    COMPLETED = "completed"

    @property
    def label(self) -> str:
        return STATUS_LABELS[self]


STATUS_LABELS = {
    TaskStatus.AVAILABLE: "Available",
    TaskStatus.OWNED: "Owned",
    TaskStatus.INPROGRESS: "In progress",
    TaskStatus.COMPLETED: "Done",
}


class Task(Base):
    """A unit of work in a story, taken and moved by one owner at a time."""

    __tablename__ = "task"
    __table_args__ = (
        CheckConstraint(
            "status IN ('available', 'owned', 'inprogress', 'completed')", name="status"
        ),
        # available ⇔ no owner; owned, inprogress and completed ⇒ an owner.
        CheckConstraint(
            "(status = 'available' AND owner_id IS NULL)"
            " OR (status <> 'available' AND owner_id IS NOT NULL)",
            name="owner_matches_status",
        ),
        # completed ⇔ a completed-at time.
        CheckConstraint(
            "(status = 'completed' AND completed_at IS NOT NULL)"
            " OR (status <> 'completed' AND completed_at IS NULL)",
            name="completed_at_matches_status",
        ),
        CheckConstraint(
            "estimate_hours IS NULL OR estimate_hours BETWEEN 1 AND 40", name="estimate"
        ),
        CheckConstraint("length(trim(title)) > 0", name="title"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organization.id", ondelete="CASCADE"), index=True
    )
    story_id: Mapped[int] = mapped_column(ForeignKey("story.id", ondelete="CASCADE"), index=True)
    # The sprint the task is in: its story's, except that a story whose sprint completed
    # with some tasks unfinished goes on in the next sprint with those, and leaves its
    # completed ones here (None: the backlog).
    sprint_id: Mapped[int | None] = mapped_column(
        ForeignKey("sprint.id", ondelete="SET NULL"), index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    ac_refs: Mapped[list[str]] = mapped_column(JSON, default=list)
    estimate_hours: Mapped[int | None]
    status: Mapped[str] = mapped_column(String(16), default=TaskStatus.AVAILABLE.value)
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="RESTRICT"), index=True
    )
    owned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(default=1)
    # Archived: off every board, count and chart, kept in the archive until restored
    # (app/tasks/tidying.py). It stays in its sprint, where a restore brings it back.
    archived_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    story: Mapped[Story] = relationship(lazy="joined", innerjoin=True)
    owner: Mapped[User | None] = relationship(lazy="joined")

    @hybrid_property
    def archived(self) -> bool:
        """On boards, counts and charts only when not archived (`~Task.archived` in a
        query: the one test of it)."""
        return self.archived_at is not None

    @archived.inplace.expression
    @classmethod
    def _archived_expression(cls) -> ColumnElement[bool]:
        return cls.archived_at.is_not(None)

    @property
    def status_enum(self) -> TaskStatus:
        return TaskStatus(self.status)

    @property
    def short_id(self) -> str:
        return f"#{self.id}"
