"""My work: what one person holds across the organization, and what they finished lately."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from app.models import Sprint, SprintStatus, Story, Task, TaskStatus

RECENT_DAYS = 7
HELD = (TaskStatus.OWNED.value, TaskStatus.INPROGRESS.value)
# The order of a person's sprints on the page: what is under way first.
_SPRINT_ORDER = {
    SprintStatus.ACTIVE.value: 0,
    SprintStatus.REVIEW.value: 1,
    SprintStatus.PLANNING.value: 2,
    SprintStatus.COMPLETED.value: 3,
}


@dataclass(frozen=True)
class Place:
    """One group of My work: a sprint (None: the backlog) and my tasks in it."""

    sprint: Sprint | None
    tasks: list[Task]

    @property
    def key(self) -> str:
        return f"sprint-{self.sprint.id}" if self.sprint else "backlog"


@dataclass(frozen=True)
class MyWork:
    held: list[Place]
    completed: list[Task]  # the last RECENT_DAYS days', newest first
    since: dt.datetime

    @property
    def held_count(self) -> int:
        return sum(len(place.tasks) for place in self.held)


async def load_my_work(
    session: AsyncSession, org_id: int, user_id: int, now: dt.datetime
) -> MyWork:
    """The tasks `user_id` holds in the organization, by sprint (the one under way
    first, the backlog last), and those they completed in the last RECENT_DAYS days.
    Archived tasks are in neither."""
    mine = (Task.org_id == org_id, Task.owner_id == user_id, ~Task.archived)
    held_rows = (
        await session.execute(
            select(Task, Sprint)
            .join(Story, Story.id == Task.story_id)
            .outerjoin(Sprint, Sprint.id == Task.sprint_id)
            .where(*mine, Task.status.in_(HELD))
            .order_by(Story.position, Story.id, Task.id)
        )
    ).all()
    places: dict[int | None, Place] = {}
    for task, sprint in held_rows:
        key = sprint.id if sprint else None
        places.setdefault(key, Place(sprint, [])).tasks.append(task)

    def order(place: Place) -> tuple[int, object]:
        if place.sprint is None:
            return (9, 0)
        return (_SPRINT_ORDER.get(place.sprint.status, 5), place.sprint.start_date)

    since = now - dt.timedelta(days=RECENT_DAYS)
    completed = list(
        await session.scalars(
            select(Task)
            .where(*mine, Task.status == TaskStatus.COMPLETED.value, Task.completed_at >= since)
            .options(joinedload(Task.story))
            .order_by(Task.completed_at.desc(), Task.id.desc())
        )
    )
    return MyWork(held=sorted(places.values(), key=order), completed=completed, since=since)
