"""Sprints, stories and their acceptance criteria."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, utcnow


class SprintStatus(enum.StrEnum):
    """planning → active → review → completed, one step at a time."""

    PLANNING = "planning"
    ACTIVE = "active"
    REVIEW = "review"
    COMPLETED = "completed"

    @property
    def next(self) -> SprintStatus | None:
        order = list(SprintStatus)
        i = order.index(self)
        return order[i + 1] if i + 1 < len(order) else None


class Sprint(Base):
    """A time box; at most one per organization is active (a partial unique index)."""

    __tablename__ = "sprint"
    __table_args__ = (
        CheckConstraint("status IN ('planning', 'active', 'review', 'completed')", name="status"),
        CheckConstraint("end_date >= start_date", name="dates"),
        Index(
            "uq_sprint_one_active",
            "org_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organization.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    goal: Mapped[str] = mapped_column(Text, default="")
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default=SprintStatus.PLANNING.value)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set once, when it completes; the report is then frozen here (app/tasks/report.py).
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    @property
    def status_enum(self) -> SprintStatus:
        return SprintStatus(self.status)

    @property
    def closed(self) -> bool:
        """Completed: its board is a record, read-only."""
        return self.status == SprintStatus.COMPLETED.value

    @property
    def completes(self) -> bool:
        """Can be completed now: in review, or completed by a release before completing
        carried work on and froze a report (completing it again does both)."""
        return self.status == SprintStatus.REVIEW.value or (self.closed and self.report is None)

    def days_remaining(self, today: dt.date) -> int:
        """Whole days left, the end date included; never below zero."""
        return max(0, (self.end_date - today).days + 1)


class Story(Base):
    """A user story: points, an ordered place in its sprint, acceptance criteria."""

    __tablename__ = "story"
    __table_args__ = (
        CheckConstraint("points BETWEEN 1 AND 8", name="points"),
        CheckConstraint("length(trim(title)) > 0", name="title"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organization.id", ondelete="CASCADE"), index=True
    )
    sprint_id: Mapped[int | None] = mapped_column(
        ForeignKey("sprint.id", ondelete="SET NULL"), index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    points: Mapped[int] = mapped_column(default=1)
    position: Mapped[int] = mapped_column(default=0)
    # One more with every edit (its ETag, and the version an edit page was opened at).
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    # Archived with its tasks (those not in a completed sprint: a record stays whole);
    # its tasks archived at this same moment come back with it.
    archived_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    criteria: Mapped[list[AcceptanceCriterion]] = relationship(
        order_by="AcceptanceCriterion.number", lazy="selectin", back_populates="story"
    )


class AcceptanceCriterion(Base):
    """Given / when / then, labelled AC1, AC2, … in creation order within its story."""

    __tablename__ = "acceptance_criterion"
    __table_args__ = (UniqueConstraint("story_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organization.id", ondelete="CASCADE"), index=True
    )
    story_id: Mapped[int] = mapped_column(ForeignKey("story.id", ondelete="CASCADE"), index=True)
    number: Mapped[int]
    given: Mapped[str] = mapped_column(Text, default="")
    when: Mapped[str] = mapped_column(Text, default="")
    then: Mapped[str] = mapped_column(Text, default="")

    story: Mapped[Story] = relationship(back_populates="criteria")

    @property
    def label(self) -> str:
        return f"AC{self.number}"
