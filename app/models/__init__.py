"""Typed SQLAlchemy models: every row belongs to one organization."""

from __future__ import annotations

from app.models.account import (
    ApiToken,
    IdentityChange,
    Invitation,
    Membership,
    Organization,
    Role,
    User,
    UserSession,
)
from app.models.event import TaskEvent
from app.models.planning import AcceptanceCriterion, Sprint, SprintStatus, Story
from app.models.task import Task, TaskStatus

__all__ = [
    "AcceptanceCriterion",
    "ApiToken",
    "IdentityChange",
    "Invitation",
    "Membership",
    "Organization",
    "Role",
    "Sprint",
    "SprintStatus",
    "Story",
    "Task",
    "TaskEvent",
    "TaskStatus",
    "User",
    "UserSession",
]
