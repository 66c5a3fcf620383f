"""Keeping the board tidy: a task moved to another story, work archived and restored.

Nothing is deleted. An archived task (`Task.archived_at`) stays in its sprint but is off
every board, count, chart and list but the archive's; the log says it left (a chart and
a report count it as removed, app/tasks/burndown.py and report.py), and a restore
brings it back where it was, as if added. A story is archived with its tasks, except
those in a completed sprint (a record stays whole); restoring it brings back the tasks
archived with it, at the same moment, and not one archived on its own before.

Every change locks in places.py's order (places, stories, tasks; the log last) and
checks that nothing moved between its first look and its locks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.accounts import member_access, require_contributor, require_owner
from app.db import find_in_org, utcnow
from app.errors import Conflict
from app.events.log import append_move_event, append_task_move
from app.events.types import EventType
from app.models import Role, Sprint, Story, Task, TaskEvent, TaskStatus, User
from app.tasks.cycle import place
from app.tasks.lifecycle import archived_message, closed_sprint_message
from app.tasks.places import lock_places
from app.tasks.sprints import OPEN_FOR_WORK

DONE = TaskStatus.COMPLETED.value
S = TypeVar("S", Task, Story)


async def as_member(
    session: AsyncSession,
    change: Callable[..., Awaitable[tuple[S, Any]]],
    *,
    actor: User,
    org_id: int,
    **ids: int,
) -> S:
    """Run one of this module's changes (`change(session, org_id=, actor=, role=, **ids)`)
    for pages and the API alike, with the role `actor` has in the organization there and
    then (read in the change's own transaction, as `change_task` does); its task or
    story."""
    access = await member_access(session, actor.id, org_id)
    subject, _events = await change(
        session, org_id=access.org_id, actor=actor, role=access.role, **ids
    )
    return subject


def _moved_meanwhile(title: str) -> Conflict:
    # Between the first look and the locks, someone moved it: nothing is written.
    return Conflict(f"“{title}” moved a moment ago; look again and retry.")


def _refuse_closed(places: dict[int, Sprint], *sprint_ids: int | None) -> None:
    for sprint_id in sprint_ids:
        if sprint_id is not None and places[sprint_id].closed:
            raise Conflict(closed_sprint_message(places[sprint_id].name))


async def _lock_task(session: AsyncSession, org_id: int, task_id: int, seen: Task) -> Task:
    task = await find_in_org(session, Task, org_id, task_id, what="task", for_update=True)
    if task.sprint_id != seen.sprint_id or task.story_id != seen.story_id:
        raise _moved_meanwhile(task.title)
    return task


# ---------------------------------------------------------------- one task --------


async def move_task(
    session: AsyncSession, *, org_id: int, task_id: int, story_id: int, actor: User, role: Role
) -> tuple[Task, TaskEvent | None]:
    """Put a task under another story of the organization, in that story's place (its
    sprint, or the backlog). Its status and owner are kept. A done task moves only
    within its sprint (it stays counted where it was done); nothing moves into or out
    of a completed sprint, or into one in review. Logs `task_moved`; None when the task
    is already there."""
    require_contributor(role)
    seen = await find_in_org(session, Task, org_id, task_id, what="task")
    target_seen = await find_in_org(session, Story, org_id, story_id, what="story")
    if seen.story_id == story_id:
        return seen, None
    source, destination = seen.sprint_id, target_seen.sprint_id
    places = await lock_places(session, org_id, [source, destination])
    stories = {
        s.id: s
        for s in await session.scalars(
            select(Story)
            .where(Story.id.in_(sorted({seen.story_id, story_id})))
            .order_by(Story.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    }
    target = stories[story_id]
    task = await _lock_task(session, org_id, task_id, seen)
    if target.sprint_id != destination:
        raise _moved_meanwhile(target.title)
    if task.archived:
        raise Conflict(archived_message(task.title))
    if target.archived_at is not None:
        raise Conflict(archived_message(target.title))
    _refuse_closed(places, source, destination)
    if destination != source:
        if destination is not None and places[destination].status not in OPEN_FOR_WORK:
            raise Conflict(
                f"“{places[destination].name}” is {places[destination].status}; tasks move "
                "only into a sprint in planning or under way."
            )
        if task.status == DONE:
            raise Conflict(
                f"“{task.title}” is done: it stays in the sprint where it was done. "
                "Reopen it first to move it elsewhere."
            )
    from_story = task.story_id
    task.story_id, task.sprint_id = story_id, destination
    task.version += 1
    task.updated_at = utcnow()
    await session.flush()
    await session.refresh(task, ["story"])
    event = await append_task_move(
        session,
        type=EventType.TASK_MOVED,
        task=task,
        actor_id=actor.id,
        from_sprint_id=source,
        to_sprint_id=destination,
        from_story_id=from_story,
    )
    return task, event


async def archive_task(
    session: AsyncSession, *, org_id: int, task_id: int, actor: User, role: Role
) -> tuple[Task, TaskEvent]:
    """Take a task off every board into the archive (`task_archived`). A completed
    sprint's tasks are a record and stay."""
    require_contributor(role)
    seen = await find_in_org(session, Task, org_id, task_id, what="task")
    places = await lock_places(session, org_id, [seen.sprint_id], shared=True)
    task = await _lock_task(session, org_id, task_id, seen)
    if task.archived:
        raise Conflict(f"“{task.title}” is archived already.")
    _refuse_closed(places, task.sprint_id)
    task.archived_at = utcnow()
    task.version += 1
    await session.flush()
    event = await append_task_move(
        session,
        type=EventType.TASK_ARCHIVED,
        task=task,
        actor_id=actor.id,
        from_sprint_id=task.sprint_id,
        to_sprint_id=None,
    )
    return task, event


def _restored_place(task: Task, story: Story) -> int | None:
    """Where a restored task goes (its story already where its open work is): a done
    task back to the sprint where it was done, a record put back whole; an unfinished
    one to its story (it may have moved on, or its sprint completed, meanwhile)."""
    if task.status == DONE and task.sprint_id is not None:
        return task.sprint_id
    return story.sprint_id


async def _reopen_place(session: AsyncSession, story: Story, places: dict[int, Sprint]) -> None:
    """A story coming back to open work from a sprint that completed meanwhile goes to
    the backlog (last), the place of work that belongs to no sprint."""
    if story.sprint_id is not None and places[story.sprint_id].closed:
        story.sprint_id = None
        await place(session, story, None)


async def restore_task(
    session: AsyncSession, *, org_id: int, task_id: int, actor: User, role: Role
) -> tuple[Task, TaskEvent]:
    """Bring an archived task back (`task_restored`), as it was: where it was, or, if
    its story has moved on since, where its story is now."""
    require_contributor(role)
    seen = await find_in_org(session, Task, org_id, task_id, what="task")
    story_seen = await find_in_org(session, Story, org_id, seen.story_id, what="story")
    places = await lock_places(session, org_id, [seen.sprint_id, story_seen.sprint_id, None])
    story = await find_in_org(session, Story, org_id, seen.story_id, what="story", for_update=True)
    if story.sprint_id != story_seen.sprint_id:
        raise _moved_meanwhile(story.title)
    task = await _lock_task(session, org_id, task_id, seen)
    if not task.archived:
        raise Conflict(f"“{task.title}” is not archived.")
    if story.archived_at is not None:
        raise Conflict(
            f"Its story “{story.title}” is archived: restore the story to bring it back."
        )
    if task.status != DONE:
        await _reopen_place(session, story, places)
    task.sprint_id = _restored_place(task, story)
    task.archived_at = None
    task.version += 1
    await session.flush()
    event = await append_task_move(
        session,
        type=EventType.TASK_RESTORED,
        task=task,
        actor_id=actor.id,
        from_sprint_id=None,
        to_sprint_id=task.sprint_id,
    )
    return task, event


# ---------------------------------------------------------------- a story ---------


def _by_place(tasks: Iterable[Task]) -> dict[int | None, list[Task]]:
    places: dict[int | None, list[Task]] = {}
    for task in tasks:
        places.setdefault(task.sprint_id, []).append(task)
    return places


async def _story_and_tasks(
    session: AsyncSession,
    org_id: int,
    story_id: int,
    which: Callable[[Story], ColumnElement[bool]],
    *,
    shared: bool,
) -> tuple[Story, list[Task], dict[int, Sprint]]:
    """The story and the tasks `which` selects, their places locked in order (the
    backlog's too, unless `shared`: only taking work out), then the story, then the
    tasks; Conflict if any of them moved since the first look."""
    story = await find_in_org(session, Story, org_id, story_id, what="story")
    seen = {t.id: t.sprint_id for t in await session.scalars(_tasks_of(story, which(story)))}
    wanted = [story.sprint_id, *seen.values(), *([] if shared else [None])]
    places = await lock_places(session, org_id, wanted, shared=shared)
    locked = await find_in_org(session, Story, org_id, story_id, what="story", for_update=True)
    if locked.sprint_id != story.sprint_id or locked.archived_at != story.archived_at:
        raise _moved_meanwhile(locked.title)
    query = _tasks_of(locked, which(locked)).with_for_update(of=Task)
    tasks = list(await session.scalars(query.execution_options(populate_existing=True)))
    if {t.id: t.sprint_id for t in tasks} != seen:
        raise _moved_meanwhile(locked.title)
    return locked, tasks, places


def _tasks_of(story: Story, where: ColumnElement[bool]) -> Select[Task]:
    return (
        select(Task)
        .where(Task.org_id == story.org_id, Task.story_id == story.id, where)
        .order_by(Task.id)
    )


async def archive_story(
    session: AsyncSession, *, org_id: int, story_id: int, actor: User, role: Role
) -> tuple[Story, list[TaskEvent]]:
    """Archive a story with its tasks (owners). Tasks in a completed sprint stay there,
    a record; a story that is all record is refused. Logs `story_archived`, once per
    place its tasks leave (usually one)."""
    require_owner(role)

    def open_tasks(story: Story) -> ColumnElement[bool]:
        return ~Task.archived

    story, tasks, places = await _story_and_tasks(
        session, org_id, story_id, open_tasks, shared=True
    )
    if story.archived_at is not None:
        raise Conflict(f"“{story.title}” is archived already.")
    _refuse_closed(places, story.sprint_id)
    leaving = [t for t in tasks if t.sprint_id is None or not places[t.sprint_id].closed]
    now = utcnow()
    story.archived_at = now
    story.version += 1
    for task in leaving:
        task.archived_at = now
        task.version += 1
    await session.flush()
    return story, await _log_story(session, EventType.STORY_ARCHIVED, story, leaving, actor)


async def restore_story(
    session: AsyncSession, *, org_id: int, story_id: int, actor: User, role: Role
) -> tuple[Story, list[TaskEvent]]:
    """Bring back an archived story with the tasks archived with it (owners): each task
    as `restore_task` puts it back, the story where its open work now goes."""
    require_owner(role)

    def archived_with_it(story: Story) -> ColumnElement[bool]:
        if story.archived_at is None:
            return Task.id.is_(None)  # none: it is not archived (refused below)
        return Task.archived_at == story.archived_at

    story, tasks, places = await _story_and_tasks(
        session, org_id, story_id, archived_with_it, shared=False
    )
    if story.archived_at is None:
        raise Conflict(f"“{story.title}” is not archived.")
    if any(t.status != DONE for t in tasks) or not tasks:
        await _reopen_place(session, story, places)
    story.archived_at = None
    story.version += 1
    for task in tasks:
        task.sprint_id = _restored_place(task, story)
        task.archived_at = None
        task.version += 1
    await session.flush()
    return story, await _log_story(session, EventType.STORY_RESTORED, story, tasks, actor)


async def _log_story(
    session: AsyncSession, type: EventType, story: Story, tasks: Sequence[Task], actor: User
) -> list[TaskEvent]:
    """One event per place the tasks left (archiving) or went back to (restoring); one
    for the story alone if it had none."""
    groups = _by_place(tasks) or {story.sprint_id: []}
    events = []
    for where in sorted(groups, key=lambda p: (p is not None, p or 0)):
        leaving = EventType(type).archives
        events.append(
            await append_move_event(
                session,
                type=type,
                org_id=story.org_id,
                actor_id=actor.id,
                title=story.title,
                story_id=story.id,
                from_sprint_id=where if leaving else None,
                to_sprint_id=None if leaving else where,
                tasks=groups[where],
            )
        )
    return events


# ---------------------------------------------------------------- the archive -----


@dataclass(frozen=True)
class Archived:
    """One line of the archive: a story with the tasks archived with it, or a task."""

    at: dt.datetime
    story: Story | None = None
    task: Task | None = None
    tasks: tuple[Task, ...] = ()


async def load_archive(session: AsyncSession, org_id: int) -> list[Archived]:
    """What is archived, newest first: stories (with the tasks that went with them),
    and tasks archived on their own."""
    stories = {
        s.id: s
        for s in await session.scalars(
            select(Story).where(Story.org_id == org_id, Story.archived_at.is_not(None))
        )
    }
    tasks = list(
        await session.scalars(
            select(Task).where(Task.org_id == org_id, Task.archived).order_by(Task.id)
        )
    )
    with_story: dict[int, list[Task]] = {}
    alone = []
    for task in tasks:
        story = stories.get(task.story_id)
        if story is not None and task.archived_at == story.archived_at:
            with_story.setdefault(story.id, []).append(task)
        else:
            alone.append(task)
    lines = [
        Archived(at=s.archived_at, story=s, tasks=tuple(with_story.get(s.id, ())))
        for s in stories.values()
        if s.archived_at is not None
    ]
    lines += [Archived(at=t.archived_at, task=t) for t in alone if t.archived_at is not None]
    return sorted(lines, key=lambda line: line.at, reverse=True)


# ---------------------------------------------------------------- choices ---------


async def story_choices(
    session: AsyncSession, org_id: int, task: Task
) -> list[tuple[Sprint | None, list[Story]]]:
    """Where a task could be moved, by place: the stories of its own sprint, of the
    sprints in planning or under way, and of the backlog (archived ones left out)."""
    sprints = [
        s
        for s in await session.scalars(
            select(Sprint).where(Sprint.org_id == org_id).order_by(Sprint.start_date, Sprint.id)
        )
        if s.status in OPEN_FOR_WORK or s.id == task.sprint_id
    ]
    places: dict[int | None, list[Story]] = {s.id: [] for s in sprints}
    places[None] = []
    for story in await session.scalars(
        select(Story)
        .where(Story.org_id == org_id, Story.archived_at.is_(None))
        .order_by(Story.position, Story.id)
    ):
        if story.sprint_id in places:
            places[story.sprint_id].append(story)
    choices: list[tuple[Sprint | None, list[Story]]] = [(s, places[s.id]) for s in sprints]
    choices.append((None, places[None]))
    return [(sprint, stories) for sprint, stories in choices if stories]
