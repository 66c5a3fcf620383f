"""Sprints: planning one, moving it on, and what its header says.

A sprint goes planning → active → review → completed, one step at a time, and at most
one sprint of an organization is active. The header (progress, counts, days left) is
the same for every viewer, so the page, the htmx answer and the live stream share it.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.accounts import require_owner
from app.db import find_in_org
from app.errors import Conflict, Invalid
from app.models import Role, Sprint, SprintStatus, Story, Task, TaskStatus
from app.tasks.burndown import Burndown, load_burndown
from app.tasks.editing import clean_title

GOAL_MAX = 500


@dataclass(frozen=True)
class SprintFields:
    """What an owner fills in to plan a sprint (dates as typed: YYYY-MM-DD)."""

    name: str
    goal: str = ""
    start_date: str = ""
    end_date: str = ""


async def plan_sprint(
    session: AsyncSession, *, org_id: int, fields: SprintFields, role: Role
) -> Sprint:
    """A new sprint in planning, checked: a name, dates in order."""
    require_owner(role)
    name = clean_title(fields.name, "sprint")
    start = parse_date(fields.start_date, "start_date", "start date")
    end = parse_date(fields.end_date, "end_date", "end date")
    if end < start:
        raise Invalid("The sprint must end on or after its start date.", field="end_date")
    goal = fields.goal.strip()
    if len(goal) > GOAL_MAX:
        raise Invalid(f"Keep the goal under {GOAL_MAX} characters.", field="goal")
    sprint = Sprint(org_id=org_id, name=name, goal=goal, start_date=start, end_date=end)
    session.add(sprint)
    await session.flush()
    return sprint


async def advance_sprint(
    session: AsyncSession, *, org_id: int, sprint_id: int, role: Role
) -> Sprint:
    """Move a sprint one step on; only one sprint of an organization may be active."""
    require_owner(role)
    sprint = await find_in_org(session, Sprint, org_id, sprint_id, what="sprint")
    after = SprintStatus(sprint.status).next
    if after is None:
        raise Conflict(f"“{sprint.name}” is already completed.")
    if after is SprintStatus.ACTIVE:
        active = await session.scalar(
            select(Sprint.name).where(
                Sprint.org_id == org_id, Sprint.status == SprintStatus.ACTIVE.value
            )
        )
        if active:
            raise Conflict(f"“{active}” is still active; move it to review first.")
    sprint.status = after.value
    await session.flush()
    return sprint


def sprints_newest_first(org_id: int) -> Select[Sprint]:
    """An organization's sprints as every list shows them: the latest start first, and
    on one start date the one planned last (so the order never depends on the database)."""
    return (
        select(Sprint)
        .where(Sprint.org_id == org_id)
        .order_by(Sprint.start_date.desc(), Sprint.id.desc())
    )


def parse_date(value: str | None, field: str, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat((value or "").strip())
    except ValueError:
        raise Invalid(f"Give the {what} as a date (YYYY-MM-DD).", field=field) from None


# ---------------------------------------------------------------- the header -------


@dataclass
class SprintSummary:
    """The header: dates, days left, progress, stories; viewer-independent."""

    sprint: Sprint
    total: int
    done: int
    stories: int
    days_remaining: int
    status_counts: Mapping[TaskStatus, int]
    owner_counts: Mapping[int, int] = field(default_factory=dict)
    burndown: Burndown | None = None

    @property
    def progress(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0

    @property
    def remaining(self) -> int:
        return self.total - self.done

    async def chart(self, session: AsyncSession, time_zone: str) -> SprintSummary:
        """This header with its burndown (one query), for a page or an answer."""
        self.burndown = await load_burndown(
            session, self.sprint, time_zone=time_zone, total=self.total, remaining=self.remaining
        )
        return self


def summarize(
    sprint: Sprint, stories: Sequence[Story], tasks: Sequence[Task], today: dt.date
) -> SprintSummary:
    """The header of a sprint whose rows are loaded (the board page has them anyway)."""
    tally = Counter((task.status, task.owner_id) for task in tasks)
    return summary_from_tally(sprint, len(stories), tally.items(), today)


# Built once: every live update runs them.
_STORY_COUNT = select(func.count(Story.id)).where(
    Story.org_id == bindparam("org_id"), Story.sprint_id == bindparam("sprint_id")
)
_TASK_TALLY = (
    select(Task.status, Task.owner_id, func.count(Task.id))
    .join(Story, Story.id == Task.story_id)
    .where(Task.org_id == bindparam("org_id"), Story.sprint_id == bindparam("sprint_id"))
    .group_by(Task.status, Task.owner_id)
)


async def load_summary(db: AsyncSession, sprint: Sprint, today: dt.date) -> SprintSummary:
    """The header of a sprint, counted by the database (a live update needs no rows)."""
    where = {"org_id": sprint.org_id, "sprint_id": sprint.id}
    stories = await db.scalar(_STORY_COUNT, where)
    tally = await db.execute(_TASK_TALLY, where)
    return summary_from_tally(
        sprint, stories or 0, (((status, owner), n) for status, owner, n in tally), today
    )


def summary_from_tally(
    sprint: Sprint,
    stories: int,
    tally: Iterable[tuple[tuple[str, int | None], int]],
    today: dt.date,
) -> SprintSummary:
    """Assemble the header from task counts per (status, owner)."""
    counts = {s: 0 for s in TaskStatus}
    owners: dict[int, int] = {}
    for (status, owner_id), number in tally:
        counts[TaskStatus(status)] += number
        if owner_id is not None:
            owners[owner_id] = owners.get(owner_id, 0) + number
    return SprintSummary(
        sprint=sprint,
        total=sum(counts.values()),
        done=counts[TaskStatus.COMPLETED],
        stories=stories,
        days_remaining=sprint.days_remaining(today),
        status_counts=counts,
        owner_counts=owners,
    )
