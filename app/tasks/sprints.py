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
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.accounts import require_owner
from app.db import find_in_org
from app.errors import Conflict, Invalid
from app.events.log import append_sprint_event
from app.events.types import EventType
from app.models import Role, Sprint, SprintStatus, Story, Task, TaskStatus, User
from app.tasks.burndown import Burndown, load_burndown
from app.tasks.editing import clean_title

GOAL_MAX = 500
# A sprint is a time box: at most a year, in a calendar a next sprint can follow.
MAX_DAYS = 366
EARLIEST, LATEST = dt.date(2000, 1, 1), dt.date(2999, 12, 31)


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
    sprint = Sprint(org_id=org_id, **check_sprint_fields(fields))
    session.add(sprint)
    await session.flush()
    return sprint


def check_sprint_fields(fields: SprintFields) -> dict[str, Any]:
    """A sprint's name, goal and dates, checked: a name, a goal not too long, dates in
    order. The one rule for planning a sprint and for changing one."""
    name = clean_title(fields.name, "sprint")
    start = parse_date(fields.start_date, "start_date", "start date")
    end = parse_date(fields.end_date, "end_date", "end date")
    if end < start:
        raise Invalid("The sprint must end on or after its start date.", field="end_date")
    if (end - start).days + 1 > MAX_DAYS:
        raise Invalid(f"A sprint lasts at most {MAX_DAYS} days.", field="end_date")
    if start < EARLIEST or end > LATEST:
        raise Invalid(f"Give dates between {EARLIEST.year} and {LATEST.year}.", field="start_date")
    goal = fields.goal.strip()
    if len(goal) > GOAL_MAX:
        raise Invalid(f"Keep the goal under {GOAL_MAX} characters.", field="goal")
    return {"name": name, "goal": goal, "start_date": start, "end_date": end}


class StartsLater(Conflict):
    """Starting a sprint before its start date: the person is asked whether to start it
    today instead, moving its start (else its chart would begin half empty)."""

    def __init__(self, sprint: Sprint, today: dt.date) -> None:
        super().__init__(
            f"“{sprint.name}” starts on {sprint.start_date:%b %-d}. Start it today "
            f"({today:%b %-d}) instead, moving its start?"
        )
        self.sprint = sprint
        self.today = today


async def advance_sprint(
    session: AsyncSession,
    *,
    org_id: int,
    sprint_id: int,
    actor: User,
    role: Role,
    today: dt.date,
    start_today: bool = False,
) -> Sprint:
    """Move a sprint one step on: planning → active → review (completing it is
    app.tasks.cycle.complete_sprint, which asks where unfinished work goes). Only one
    sprint of an organization may be active; one whose start date is still ahead starts
    only if `start_today` (its start moves to `today`). Logs `sprint_status_changed`."""
    require_owner(role)
    sprint = await find_in_org(session, Sprint, org_id, sprint_id, what="sprint", for_update=True)
    before = SprintStatus(sprint.status)
    after = before.next
    if after is None:
        raise Conflict(f"“{sprint.name}” is already completed.")
    if after is SprintStatus.COMPLETED:
        raise Conflict(
            f"Complete “{sprint.name}” from its completion page, which asks where its "
            "unfinished tasks go."
        )
    if after is SprintStatus.ACTIVE:
        active = await session.scalar(
            select(Sprint.name).where(
                Sprint.org_id == org_id, Sprint.status == SprintStatus.ACTIVE.value
            )
        )
        if active:
            raise Conflict(f"“{active}” is still active; move it to review first.")
        if sprint.start_date > today:
            if not start_today:
                raise StartsLater(sprint, today)
            sprint.start_date = today
    sprint.status = after.value
    try:
        await session.flush()
    except IntegrityError:  # another owner started another sprint this very moment
        raise Conflict("Another sprint was started a moment ago; look again.") from None
    await append_sprint_event(
        session,
        type=EventType.SPRINT_STATUS_CHANGED,
        sprint=sprint,
        actor_id=actor.id,
        old_status=before.value,
        new_status=after.value,
    )
    return sprint


# Where stories may be moved to, and unfinished work carried to: a sprint still ahead
# or under way (a sprint in review is being closed).
OPEN_FOR_WORK = (SprintStatus.PLANNING.value, SprintStatus.ACTIVE.value)


async def sprints_open_for_work(session: AsyncSession, org_id: int) -> list[Sprint]:
    """The sprints a story can move into (planning or active), soonest first."""
    return list(
        await session.scalars(
            select(Sprint)
            .where(Sprint.org_id == org_id, Sprint.status.in_(OPEN_FOR_WORK))
            .order_by(Sprint.start_date, Sprint.id)
        )
    )


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


def stories_of(sprint_id: int | ColumnElement[int]) -> ColumnElement[bool]:
    """A sprint's stories: those in it, and those with tasks in it (a story carried on
    from a completed sprint is in the next one, and its completed tasks in both)."""
    return or_(
        and_(Story.sprint_id == sprint_id, Story.archived_at.is_(None)),
        Story.id.in_(select(Task.story_id).where(Task.sprint_id == sprint_id, ~Task.archived)),
    )


# Built once: every live update runs them.
_STORY_COUNT = select(func.count(Story.id)).where(
    Story.org_id == bindparam("org_id"), stories_of(bindparam("sprint_id"))
)
_TASK_TALLY = (
    select(Task.status, Task.owner_id, func.count(Task.id))
    .where(
        Task.org_id == bindparam("org_id"),
        Task.sprint_id == bindparam("sprint_id"),
        ~Task.archived,
    )
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
