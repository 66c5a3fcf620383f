"""Append to and read the per-organization event log."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from app.db import table_of, utcnow
from app.db.outbox import outbox
from app.events.types import EventType
from app.models import Organization, Sprint, Story, Task, TaskEvent

# Every change runs these two, so they are built once, on the tables rather than the
# mapped classes (the ORM's bulk-update and unit-of-work paths cost more than the SQL).
_organization = table_of(Organization)
_NEXT_EVENT_ID = (
    update(_organization)
    .where(_organization.c.id == bindparam("org_id"))
    .values(last_event_id=_organization.c.last_event_id + 1)
    .returning(_organization.c.last_event_id)
)
_INSERT_EVENT = insert(table_of(TaskEvent))


async def next_event_id(session: AsyncSession, org_id: int) -> int:
    """Allocate the organization's next event id inside the current transaction.

    Incrementing a counter on the organization row locks that row until COMMIT, so
    two changes in one organization take their ids in the order they commit. A
    database sequence would not give that on PostgreSQL (a transaction holding a
    lower id can commit later), and a stream that trusts ids would skip the event.
    """
    result = await session.execute(_NEXT_EVENT_ID, {"org_id": org_id})
    return int(result.scalar_one())


async def append_event(
    session: AsyncSession,
    *,
    type: EventType,
    task: Task,
    actor_id: int | None,
    old_status: str | None = None,
    new_status: str | None = None,
    owner_id: int | None = None,
    previous_owner_id: int | None = None,
    sprint_id: int | None = None,
    fields: Sequence[str] = (),
    reason: str | None = None,
) -> TaskEvent:
    """Write one event row for a change to `task`, in the caller's transaction
    (`fields`: what an edit changed; `reason`: why an owner freed it)."""
    return await _log(
        session,
        TaskEvent(
            org_id=task.org_id,
            type=type,
            task_id=task.id,
            story_id=task.story_id,
            sprint_id=sprint_id,
            actor_id=actor_id,
            owner_id=owner_id,
            previous_owner_id=previous_owner_id,
            old_status=old_status,
            new_status=new_status,
            title=task.title,
            fields=",".join(fields) or None,
            reason=reason,
        ),
    )


async def append_story_event(
    session: AsyncSession,
    *,
    type: EventType,
    story: Story,
    actor_id: int | None,
    fields: Sequence[str] = (),
) -> TaskEvent:
    """Write one event row for a change to a story (no task), in the caller's transaction."""
    return await _log(
        session,
        TaskEvent(
            org_id=story.org_id,
            type=type,
            story_id=story.id,
            sprint_id=story.sprint_id,
            actor_id=actor_id,
            title=story.title,
            fields=",".join(fields) or None,
        ),
    )


async def append_move_event(
    session: AsyncSession,
    *,
    type: EventType,
    org_id: int,
    actor_id: int | None,
    title: str,
    from_sprint_id: int | None,
    to_sprint_id: int | None,
    tasks: Sequence[Task],
    story_id: int | None = None,
) -> TaskEvent:
    """Write the event of tasks going from one sprint to another (None: the backlog):
    a story moved, or a sprint completed carrying its unfinished tasks (or a story
    archived or restored with its tasks: from or to nowhere)."""
    return await _log(
        session,
        TaskEvent(
            org_id=org_id,
            type=type,
            story_id=story_id,
            sprint_id=from_sprint_id,
            to_sprint_id=to_sprint_id,
            task_ids=sorted(task.id for task in tasks),
            done_count=sum(1 for task in tasks if task.status == "completed"),
            actor_id=actor_id,
            title=title,
        ),
    )


async def append_task_move(
    session: AsyncSession,
    *,
    type: EventType,
    task: Task,
    actor_id: int | None,
    from_sprint_id: int | None,
    to_sprint_id: int | None,
    from_story_id: int | None = None,
) -> TaskEvent:
    """Write the event of one task changing place: to another story (`from_story_id`:
    the one it left; `task.story_id` is where it is now), into the archive or out of
    it. Read like a story's move (`task_ids`, `done_count`) by charts and reports."""
    moved_story = from_story_id is not None and from_story_id != task.story_id
    return await _log(
        session,
        TaskEvent(
            org_id=task.org_id,
            type=type,
            task_id=task.id,
            story_id=from_story_id if moved_story else task.story_id,
            to_story_id=task.story_id if moved_story else None,
            sprint_id=from_sprint_id,
            to_sprint_id=to_sprint_id,
            task_ids=[task.id],
            done_count=1 if task.status == "completed" else 0,
            actor_id=actor_id,
            owner_id=task.owner_id,
            title=task.title,
        ),
    )


async def append_sprint_event(
    session: AsyncSession,
    *,
    type: EventType,
    sprint: Sprint,
    actor_id: int | None,
    old_status: str | None = None,
    new_status: str | None = None,
    fields: Sequence[str] = (),
) -> TaskEvent:
    """Write the event of a change to a sprint itself (its status, name or dates)."""
    return await _log(
        session,
        TaskEvent(
            org_id=sprint.org_id,
            type=type,
            sprint_id=sprint.id,
            actor_id=actor_id,
            old_status=old_status,
            new_status=new_status,
            title=sprint.name,
            fields=",".join(fields) or None,
        ),
    )


async def _log(session: AsyncSession, event: TaskEvent) -> TaskEvent:
    """Number the event, stamp it, write it, and queue it for announcement.

    The row is written with one INSERT rather than through the session's unit of
    work; `event` is then marked as that stored row (detached), so it reads like
    one loaded from the database.
    """
    event.id = await next_event_id(session, event.org_id)
    event.created_at = utcnow()
    await session.execute(_INSERT_EVENT, _columns(event))
    make_transient_to_detached(event)
    # Database.write announces these once the transaction has committed.
    outbox(session).events.append(event)
    return event


def _columns(event: TaskEvent) -> dict[str, object]:
    """The event's column values; unset ones are left to the column defaults."""
    values = {column.key: getattr(event, column.key) for column in table_of(TaskEvent).columns}
    return {key: value for key, value in values.items() if value is not None}


async def last_event_id(session: AsyncSession, org_id: int) -> int:
    """The id of the newest event of an organization (0 when it has none)."""
    value = await session.scalar(
        select(Organization.last_event_id).where(Organization.id == org_id)
    )
    return int(value or 0)


async def newest_event_ids(session: AsyncSession) -> dict[int, int]:
    """The id of the newest event of every organization."""
    rows = await session.execute(select(Organization.id, Organization.last_event_id))
    return {org_id: last for org_id, last in rows}


# A story's events that take its tasks along (`task_ids` says which).
_STORY_MOVES_TASKS = (EventType.STORY_MOVED, EventType.STORY_ARCHIVED, EventType.STORY_RESTORED)


async def task_history(session: AsyncSession, org_id: int, task_id: int) -> Sequence[TaskEvent]:
    """Every event of one task, newest first: its own, and the moves that took it along
    (its stories' moves, archives and restores, and a completion that carried it on)."""
    own = list(
        await session.scalars(
            select(TaskEvent).where(TaskEvent.org_id == org_id, TaskEvent.task_id == task_id)
        )
    )
    # The stories it has been under: its own now, and those it was moved from.
    stories = {e.story_id for e in own} | {e.to_story_id for e in own}
    stories |= {await session.scalar(select(Task.story_id).where(Task.id == task_id))}
    moves = await session.scalars(
        select(TaskEvent).where(
            TaskEvent.org_id == org_id,
            or_(
                and_(
                    TaskEvent.type.in_(_STORY_MOVES_TASKS),
                    TaskEvent.story_id.in_(stories - {None}),
                ),
                TaskEvent.type == EventType.SPRINT_COMPLETED,
            ),
        )
    )
    moved = [event for event in moves if task_id in (event.task_ids or ())]
    return sorted([*own, *moved], key=lambda event: event.id, reverse=True)
