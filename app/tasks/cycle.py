"""The sprint cycle beyond one sprint: the backlog, stories moving between it and the
sprints, a sprint completing with its unfinished work carried on, and a planned sprint
changed or removed.

A task is in one sprint (`Task.sprint_id`; None: the backlog). A story is where its
open work is (`Story.sprint_id`): moving it out of a sprint, or completing the sprint,
takes its unfinished tasks on while its completed ones stay where they were done, so a
story can show on two boards. Every move is
one event in the log (`story_moved`, `sprint_completed`) naming the tasks it took, so
reports can be rebuilt from the log (app/tasks/report.py).
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.accounts import require_owner
from app.db import find_in_org, utcnow
from app.errors import Conflict, Invalid
from app.events.log import append_move_event, append_sprint_event
from app.events.types import EventType
from app.inputs import row_id
from app.models import Role, Sprint, SprintStatus, Story, Task, TaskStatus, User
from app.tasks.places import lock_places
from app.tasks.report import freeze_report
from app.tasks.sprints import OPEN_FOR_WORK, SprintFields, check_sprint_fields, stories_of

BACKLOG, NEW = "backlog", "new"


# ---------------------------------------------------------------- the backlog -----


@dataclass(frozen=True)
class BacklogStory:
    story: Story
    tasks: list[Task]


async def load_backlog(session: AsyncSession, org_id: int) -> list[BacklogStory]:
    """The stories in no sprint, by position, each with its tasks (two queries)."""
    stories = list(
        await session.scalars(
            select(Story)
            .where(Story.org_id == org_id, Story.sprint_id.is_(None), Story.archived_at.is_(None))
            .order_by(Story.position, Story.id)
        )
    )
    tasks: dict[int, list[Task]] = {story.id: [] for story in stories}
    for task in await session.scalars(
        select(Task)
        .where(Task.org_id == org_id, Task.sprint_id.is_(None), ~Task.archived)
        .order_by(Task.id)
    ):
        tasks.setdefault(task.story_id, []).append(task)
    return [BacklogStory(story, tasks[story.id]) for story in stories]


# ---------------------------------------------------------------- moving stories --


async def move_story(
    session: AsyncSession,
    *,
    org_id: int,
    story_id: int,
    to_sprint_id: int | None,
    before: int | None = None,
    actor: User,
    role: Role,
    all_tasks: bool = False,
) -> Story:
    """Move a story into a planning or active sprint, or to the backlog (None), with
    its tasks where it is now: from a sprint its unfinished ones (what was completed
    there stays there, counted where it was done, as when a sprint completes), from
    the backlog all of them. `before` (a story id there) sets its place, else it goes
    last; moving it where it is only reorders. Logs `story_moved`. (`all_tasks`: its
    sprint is being deleted, and everything in it goes.)"""
    require_owner(role)
    seen = await find_in_org(session, Story, org_id, story_id, what="story")
    source = seen.sprint_id
    places = await lock_places(session, org_id, [source, to_sprint_id])
    story = await find_in_org(session, Story, org_id, story_id, what="story", for_update=True)
    if story.sprint_id != source:
        raise Conflict(f"Someone moved “{story.title}” a moment ago; look again and retry.")
    if story.archived_at is not None and not all_tasks:
        raise Conflict(f"“{story.title}” is archived: restore it first.")
    if source is not None and places[source].closed:
        raise Conflict(f"“{places[source].name}” is completed; its stories stay where they were.")
    if to_sprint_id is not None and to_sprint_id != source:
        target = places[to_sprint_id]
        if target.status not in OPEN_FOR_WORK:
            raise Conflict(
                f"“{target.name}” is {target.status}; stories move only into a sprint "
                "in planning or under way."
            )
    moving: list[Task] = []
    if to_sprint_id != source:
        # Archived tasks stay where they were archived from (a restore brings them back
        # there), unless the sprint itself goes.
        query = select(Task).where(Task.org_id == org_id, Task.story_id == story.id, _in(source))
        if not all_tasks:
            query = query.where(~Task.archived)
        there = list(await session.scalars(query.order_by(Task.id).with_for_update(of=Task)))
        moving = there
        if source is not None and not all_tasks:
            moving = [t for t in there if t.status != TaskStatus.COMPLETED.value]
            if there and not moving:
                raise Conflict(
                    f"All of “{story.title}”’s work in “{places[source].name}” is done; "
                    "it stays there, counted where it was done."
                )
        carry(moving, to_sprint_id)
        story.sprint_id = to_sprint_id
    elif before == story.id or not await _reorders(session, story, before):
        return story  # already there, already in that place: nothing to log
    await place(session, story, before)
    await session.flush()
    await append_move_event(
        session,
        type=EventType.STORY_MOVED,
        org_id=org_id,
        actor_id=actor.id,
        title=story.title,
        story_id=story.id,
        from_sprint_id=source,
        to_sprint_id=to_sprint_id,
        tasks=moving,
    )
    return story


def carry(tasks: Iterable[Task], to_sprint_id: int | None) -> None:
    """Put tasks in another sprint (None: the backlog). Their version moves on too, so a
    life-cycle change read before the move retries and logs the sprint they are in."""
    for task in tasks:
        task.sprint_id = to_sprint_id
        task.version += 1


def _in(sprint_id: int | None) -> ColumnElement[bool]:
    """Tasks in this sprint (None: the backlog)."""
    return Task.sprint_id.is_(None) if sprint_id is None else Task.sprint_id == sprint_id


async def _siblings(session: AsyncSession, story: Story) -> list[Story]:
    """The other stories where this one is (its sprint's own, or the backlog's), in order."""
    where = (
        Story.sprint_id.is_(None) if story.sprint_id is None else Story.sprint_id == story.sprint_id
    )
    return list(
        await session.scalars(
            select(Story)
            .where(
                Story.org_id == story.org_id,
                where,
                Story.id != story.id,
                Story.archived_at.is_(None),
            )
            .order_by(Story.position, Story.id)
        )
    )


async def _reorders(session: AsyncSession, story: Story, before: int | None) -> bool:
    """Would placing the story before `before` (None: last) change the order?"""
    others = await _siblings(session, story)
    behind = [s for s in others if (s.position, s.id) > (story.position, story.id)]
    if before is None:
        return bool(behind)
    return not (behind and behind[0].id == before)


async def place(session: AsyncSession, story: Story, before: int | None) -> None:
    """Put the story before the story `before` where it now is (last if that one is not
    there), numbering the positions there 1, 2, 3 …"""
    others = await _siblings(session, story)
    at = next((i for i, s in enumerate(others) if s.id == before), len(others))
    for position, each in enumerate([*others[:at], story, *others[at:]], start=1):
        if each.position != position:
            each.position = position


# ---------------------------------------------------------------- completing ------


@dataclass(frozen=True)
class Completion:
    sprint: Sprint
    carried_to: Sprint | None
    carried: list[Task]


async def unfinished_tasks(session: AsyncSession, sprint: Sprint) -> list[Task]:
    """What completing the sprint would carry on, by story then task."""
    query = (
        select(Task)
        .join(Story, Story.id == Task.story_id)
        .where(
            Task.org_id == sprint.org_id,
            Task.sprint_id == sprint.id,
            Task.status != TaskStatus.COMPLETED.value,
            ~Task.archived,
        )
        .order_by(Story.position, Story.id, Task.id)
    )
    return list(await session.scalars(query))


async def complete_sprint(
    session: AsyncSession,
    *,
    org_id: int,
    sprint_id: int,
    carry_to: str,
    actor: User,
    role: Role,
    time_zone: str,
) -> Completion:
    """Complete a sprint in review: its unfinished tasks go on, with their stories,
    status and owners, to `carry_to` (a planning or active sprint's id, `new`: a new
    sprint after this one, or `backlog`); its report is frozen (its days counted in
    `time_zone`, the organization's). Logs `sprint_completed`.

    A sprint completed before completing carried anything (by an earlier release) has
    no report: completing it again carries its unfinished work on and writes it."""
    require_owner(role)
    kind, target_id = _destination(carry_to)
    places = await lock_places(
        session, org_id, [sprint_id, target_id if kind is _Kind.SPRINT else None]
    )
    sprint = places.get(sprint_id) or await find_in_org(
        session, Sprint, org_id, sprint_id, what="sprint"
    )
    if sprint.closed and sprint.report is not None:
        raise Conflict(f"“{sprint.name}” is already completed.")
    if not sprint.closed and sprint.status != SprintStatus.REVIEW.value:
        raise Conflict(f"“{sprint.name}” is {sprint.status}; a sprint is completed from review.")
    # Its stories, then its tasks, locked: an edit, a take or a Done on them waits for
    # this (and then finds the sprint completed), so what goes on is what was unfinished
    # when it commits and nothing changes in it afterwards.
    await session.execute(
        select(Story.id)
        .where(Story.org_id == org_id, stories_of(sprint.id))
        .order_by(Story.id)
        .with_for_update()
    )
    await session.execute(
        select(Task.id).where(Task.sprint_id == sprint.id).order_by(Task.id).with_for_update()
    )
    carried = await unfinished_tasks(session, sprint)
    target = None
    if carried:  # nothing to carry: nowhere to go (and no new sprint made for nothing)
        if kind is _Kind.NEW:
            target = await _next_sprint(session, sprint)
        elif kind is _Kind.SPRINT:
            assert target_id is not None
            target = places.get(target_id) or await find_in_org(
                session, Sprint, org_id, target_id, what="sprint"
            )
            if target.id == sprint.id or target.status not in OPEN_FOR_WORK:
                raise Invalid(
                    f"“{target.name}” is {target.status}: carry the work to a sprint in "
                    "planning or under way, a new sprint, or the backlog.",
                    field="carry_to",
                )
    to_id = target.id if target else None
    for story_id in dict.fromkeys(task.story_id for task in carried):
        story = await session.get(Story, story_id)
        assert story is not None
        if story.sprint_id != to_id:
            story.sprint_id = to_id
            await place(session, story, None)
    carry(carried, to_id)
    sprint.status = SprintStatus.COMPLETED.value
    sprint.completed_at = utcnow()
    await session.flush()
    await append_move_event(
        session,
        type=EventType.SPRINT_COMPLETED,
        org_id=org_id,
        actor_id=actor.id,
        title=sprint.name,
        from_sprint_id=sprint.id,
        to_sprint_id=to_id,
        tasks=carried,
    )
    await freeze_report(session, sprint, time_zone)
    return Completion(sprint, target, carried)


class _Kind(enum.Enum):
    SPRINT = "sprint"
    NEW = "new"
    BACKLOG = "backlog"


def _destination(carry_to: str) -> tuple[_Kind, int | None]:
    """Where unfinished work is to go, as asked: a sprint (its id), a new one, or the
    backlog (checked against what is there once the places are locked)."""
    choice = (carry_to or "").strip().lower()
    if choice == BACKLOG:
        return _Kind.BACKLOG, None
    if choice == NEW:
        return _Kind.NEW, None
    target_id = row_id(choice)
    if target_id is None:
        raise Invalid(
            "Say where the unfinished tasks go: a sprint in planning or under way, "
            "a new sprint, or the backlog.",
            field="carry_to",
        )
    return _Kind.SPRINT, target_id


_NUMBERED = re.compile(r"^(.*?)(\d+)(\D*)$")


def next_name(name: str) -> str:
    """ "Sprint 14 — Live board" → "Sprint 15"; a name without a number gets "(next)"."""
    found = _NUMBERED.match(name.split(" — ")[0].strip())
    if found:
        return f"{found.group(1)}{int(found.group(2)) + 1}{found.group(3)}".strip()
    return f"{name} (next)"[:200]


async def _next_sprint(session: AsyncSession, sprint: Sprint) -> Sprint:
    """A planning sprint starting the day after this one ends, as long as this one."""
    length = sprint.end_date - sprint.start_date
    start = sprint.end_date + dt.timedelta(days=1)
    new = Sprint(
        org_id=sprint.org_id,
        name=next_name(sprint.name),
        start_date=start,
        end_date=start + length,
    )
    session.add(new)
    await session.flush()
    return new


# ---------------------------------------------------------------- planned sprints -


async def edit_sprint(
    session: AsyncSession,
    *,
    org_id: int,
    sprint_id: int,
    fields: SprintFields,
    actor: User,
    role: Role,
) -> Sprint:
    """Change a sprint's name, goal and dates (not once it is completed). Logs
    `sprint_updated` naming what changed."""
    require_owner(role)
    sprint = await find_in_org(session, Sprint, org_id, sprint_id, what="sprint", for_update=True)
    if sprint.closed:
        raise Conflict(f"“{sprint.name}” is completed; its name and dates are a record now.")
    values = check_sprint_fields(fields)
    changed = [name for name, value in values.items() if getattr(sprint, name) != value]
    if not changed:
        return sprint
    for name in changed:
        setattr(sprint, name, values[name])
    await session.flush()
    await append_sprint_event(
        session, type=EventType.SPRINT_UPDATED, sprint=sprint, actor_id=actor.id, fields=changed
    )
    return sprint


async def delete_sprint(
    session: AsyncSession, *, org_id: int, sprint_id: int, actor: User, role: Role
) -> tuple[str, int]:
    """Remove a sprint still in planning; its stories (and their tasks) go to the end of
    the backlog, each move logged, then `sprint_deleted`. Returns its name and how many
    stories moved."""
    require_owner(role)
    sprint = (await lock_places(session, org_id, [None, sprint_id]))[sprint_id]
    if sprint.status != SprintStatus.PLANNING.value:
        raise Conflict(
            f"“{sprint.name}” is {sprint.status}; only a sprint still in planning can be "
            "deleted (its work has a history)."
        )
    # Its stories, then their tasks, locked before the first move logs an event (the
    # event counter comes last in the lock order: places.py).
    stories = list(
        await session.scalars(
            select(Story)
            .where(Story.org_id == org_id, Story.sprint_id == sprint.id)
            .order_by(Story.id)
            .with_for_update(of=Story)
        )
    )
    await session.execute(
        select(Task.id).where(Task.sprint_id == sprint.id).order_by(Task.id).with_for_update()
    )
    for story in sorted(stories, key=lambda s: (s.position, s.id)):
        await move_story(
            session,
            org_id=org_id,
            story_id=story.id,
            to_sprint_id=None,
            actor=actor,
            role=role,
            all_tasks=True,
        )
    name = sprint.name
    await append_sprint_event(
        session, type=EventType.SPRINT_DELETED, sprint=sprint, actor_id=actor.id
    )
    await session.execute(delete(Sprint).where(Sprint.id == sprint.id))
    return name, len(stories)


async def count_stories(session: AsyncSession, sprint_ids: Sequence[int]) -> dict[int, int]:
    """How many stories each sprint shows (its own, and those with tasks in it)."""
    pairs = (
        select(Story.sprint_id.label("sprint_id"), Story.id.label("story_id"))
        .where(Story.archived_at.is_(None))
        .union(select(Task.sprint_id, Task.story_id).where(~Task.archived))
    )
    rows = pairs.subquery()
    counted = await session.execute(
        select(rows.c.sprint_id, func.count(rows.c.story_id))
        .where(rows.c.sprint_id.in_(sprint_ids))
        .group_by(rows.c.sprint_id)
    )
    return {sprint_id: n for sprint_id, n in counted}
