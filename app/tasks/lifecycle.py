"""Take, start, pause, complete, release, reopen, free: who may do what, from which
status.

Each action is one compare-and-set UPDATE (`WHERE status = <seen> AND version =
<seen>`), so when two people act on one task at the same moment exactly one UPDATE
matches; the other is told who won. The change and its event row share the caller's
transaction.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, raiseload
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from app.auth.accounts import member_access, require_contributor
from app.db import find_in_org, table_of, utcnow
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.events.log import append_event
from app.events.types import EventType
from app.models import Role, Sprint, SprintStatus, Story, Task, TaskEvent, TaskStatus, User
from app.timefmt import ago

AVAILABLE, OWNED, INPROGRESS, COMPLETED = (
    TaskStatus.AVAILABLE,
    TaskStatus.OWNED,
    TaskStatus.INPROGRESS,
    TaskStatus.COMPLETED,
)


class Action(enum.StrEnum):
    TAKE = "take"
    START = "start"
    PAUSE = "pause"
    COMPLETE = "complete"
    RELEASE = "release"
    REOPEN = "reopen"  # an accidental Done
    FREE = "free"  # an organization owner, for someone away, with a reason


@dataclass(frozen=True)
class Rule:
    """One row of the life-cycle table: from which statuses, to which, and who may."""

    sources: frozenset[TaskStatus]
    target: TaskStatus
    owner_only: bool
    event_type: EventType
    button: str  # what the button says
    past: str  # "took", for messages and toasts
    key: str  # its one-key shortcut on a focused card (aria-keyshortcuts); "": none
    # Besides the task's owner, an organization owner may (with `owner_only`).
    org_owners_too: bool = False
    # Only an organization owner, on a task someone else holds, with a reason; not a
    # card button (it needs the reason: the task's page asks for it).
    frees: bool = False


# Shortcut keys are single letters with no modifier: arrows and modifier combinations
# belong to the browser and to screen readers.
RULES: dict[Action, Rule] = {
    Action.TAKE: Rule(
        frozenset({AVAILABLE}), OWNED, False, EventType.OWNERSHIP_TAKEN, "I'm on it", "took", "t"
    ),
    Action.START: Rule(
        frozenset({OWNED}), INPROGRESS, True, EventType.STATUS_CHANGED, "Start", "started", "s"
    ),
    Action.PAUSE: Rule(
        frozenset({INPROGRESS}), OWNED, True, EventType.STATUS_CHANGED, "Pause", "paused", "p"
    ),
    Action.COMPLETE: Rule(
        frozenset({OWNED, INPROGRESS}),
        COMPLETED,
        True,
        EventType.STATUS_CHANGED,
        "Done",
        "completed",
        "d",
    ),
    Action.RELEASE: Rule(
        frozenset({OWNED, INPROGRESS}),
        AVAILABLE,
        True,
        EventType.OWNERSHIP_RELEASED,
        "Give up",
        "released",
        "g",
    ),
    Action.REOPEN: Rule(
        frozenset({COMPLETED}),
        OWNED,
        True,
        EventType.STATUS_CHANGED,
        "Reopen",
        "reopened",
        "o",
        org_owners_too=True,
    ),
    Action.FREE: Rule(
        frozenset({OWNED, INPROGRESS}),
        AVAILABLE,
        False,
        EventType.OWNERSHIP_RELEASED,
        "Free it",
        "freed",
        "",
        frees=True,
    ),
}
REASON_LIMIT = 200  # characters of why a task was freed (the log's column)


def actions_from(status: TaskStatus) -> list[Action]:
    """The actions a task in `status` offers as card buttons, in button order."""
    return [action for action, rule in RULES.items() if status in rule.sources and not rule.frees]


def action_for_target(current: TaskStatus, target: TaskStatus) -> Action | None:
    """The action that moves a task from `current` to `target`, if there is one."""
    for action, rule in RULES.items():
        if rule.target is target and current in rule.sources and not rule.frees:
            return action
    return None


@dataclass(frozen=True)
class Change:
    """A committed-to-be change: the task as it now is, and its event."""

    task: Task
    event: TaskEvent
    action: Action

    @property
    def message(self) -> str:
        """ "You took “Write API tests”; it is now in Owned." (said to the one who acted)."""
        rule = RULES[self.action]
        return f"You {rule.past} “{self.task.title}”; it is now in {rule.target.label}."


async def load_task(
    session: AsyncSession, org_id: int, task_id: int, *, for_update: bool = False
) -> Task:
    """The task with this id in this organization, or NotFound (locked for the rest of
    the write with `for_update`: an edit reads what it merges with)."""
    return await find_in_org(session, Task, org_id, task_id, what="task", for_update=for_update)


def check(
    task: Task, action: Action, actor: User, role: Role, now: dt.datetime, holder: str | None
) -> Rule:
    """Raise the refusal a person should read if `actor` may not `action` the task now.

    `holder` is the name of the task's owner, if it has one.
    """
    rule = RULES[action]
    require_contributor(role)
    if task.archived:
        raise Conflict(archived_message(task.title))
    status = task.status_enum
    mine = task.owner_id == actor.id
    if rule.frees:
        _check_free(task, role, mine, holder)
        return rule
    if action is Action.TAKE and status is not AVAILABLE:
        if mine:
            raise Conflict(f"You already hold “{task.title}”.")
        if holder is not None:
            raise Conflict(
                f"{holder} took “{task.title}” {ago(task.owned_at, now)}; "
                "it is no longer available."
            )
    if rule.owner_only and status is AVAILABLE:
        raise Conflict(f"“{task.title}” is available: take it first.")
    org_owner = rule.org_owners_too and role is Role.OWNER
    if rule.owner_only and not mine and holder is not None and not org_owner:
        raise Conflict(
            f"Only {holder}, who took “{task.title}” {ago(task.owned_at, now)}, "
            f"can {action.value} it."
        )
    if status not in rule.sources:
        raise Conflict(_wrong_status_message(task, action))
    return rule


def _check_free(task: Task, role: Role, mine: bool, holder: str | None) -> None:
    """Freeing: an organization owner's, for a task someone else holds."""
    if role is not Role.OWNER:
        raise Forbidden("Only an organization owner can free a task someone else holds.")
    if task.status_enum is AVAILABLE:
        raise Conflict(f"“{task.title}” is available already.")
    if task.status_enum is COMPLETED:
        raise Conflict(f"“{task.title}” is done: reopen it first if it is not.")
    if mine:
        raise Conflict(f"You hold “{task.title}”: give it up instead.")
    assert holder is not None


def archived_message(title: str) -> str:
    """What a refused change to an archived task says."""
    return f"“{title}” is archived: restore it first."


def _wrong_status_message(task: Task, action: Action) -> str:
    status = task.status_enum
    if action is Action.REOPEN:
        return f"“{task.title}” is not done, so there is nothing to reopen."
    if status is COMPLETED:
        return f"“{task.title}” is already done."
    if action is Action.START and status is INPROGRESS:
        return f"“{task.title}” is already in progress."
    if action is Action.PAUSE and status is OWNED:
        return f"“{task.title}” is not in progress, so it cannot be paused."
    return f"“{task.title}” is {status.label.lower()}; it cannot be {RULES[action].past} now."


# What a change reads: the task, its story (the event names the sprint) without the
# story's criteria (a second query), and only the name of whoever holds it. Built
# once: it runs on every change. Not `populate_existing`: that would also reset a
# story this session already holds, criteria included; `_task_for_change` expires
# just the task instead.
_TASK_FOR_CHANGE = (
    select(Task, User.name, Sprint.name, Sprint.status)
    .outerjoin(User, User.id == Task.owner_id)
    .outerjoin(Sprint, Sprint.id == Task.sprint_id)
    .where(Task.id == bindparam("task_id"), Task.org_id == bindparam("org_id"))
    .options(joinedload(Task.story).raiseload(Story.criteria), raiseload(Task.owner))
)
# The compare-and-set: it matches only the row as it was read. On the table, not the
# mapped class: the ORM's bulk-update path costs more than the statement.
_task = table_of(Task)
_CHANGE_TASK = (
    update(_task)
    .where(
        _task.c.id == bindparam("task_id"),
        _task.c.status == bindparam("seen_status"),
        _task.c.version == bindparam("seen_version"),
    )
    .values(
        status=bindparam("status"),
        version=bindparam("version"),
        updated_at=bindparam("updated_at"),
        owner_id=bindparam("owner_id"),
        owned_at=bindparam("owned_at"),
        estimate_hours=bindparam("estimate_hours"),
        completed_at=bindparam("completed_at"),
    )
)


async def change_task(
    session: AsyncSession,
    *,
    actor: User,
    org: int | str | None,
    task_id: int,
    action: Action,
    reason: str | None = None,
) -> Change:
    """The one way to change a task, for pages, the API and the CLI alike.

    Who (`actor`), in which organization (`org`: an id, a reference a client sent, or
    None for the actor's first), which task, which action. The actor's role is read
    here, in the change's own transaction, so a role changed a moment ago is the role
    the change is judged by. Raises the refusal a person should read, or returns the
    change (committed with its event when the caller's transaction commits). Freeing
    needs a `reason` (checked here: every way in says the same).
    """
    if RULES[action].frees:
        reason = check_reason(reason)
    access = await member_access(session, actor.id, org)
    return await perform(
        session,
        org_id=access.org_id,
        task_id=task_id,
        action=action,
        actor=actor,
        role=access.role,
        reason=reason,
    )


def check_reason(reason: str | None) -> str:
    """Why a task is freed: required, at most REASON_LIMIT characters."""
    text = (reason or "").strip()
    if not text:
        raise Invalid("Say why you free it: its holder is told.", field="reason")
    if len(text) > REASON_LIMIT:
        raise Invalid(
            f"The reason can be at most {REASON_LIMIT} characters (it has {len(text)}).",
            field="reason",
        )
    return text


async def perform(
    session: AsyncSession,
    *,
    org_id: int,
    task_id: int,
    action: Action,
    actor: User,
    role: Role,
    reason: str | None = None,
) -> Change:
    """Apply one life-cycle action as someone with `role`, and write its event, in the
    caller's transaction. Callers outside this module go through `change_task`."""
    for _attempt in range(3):
        now = utcnow()
        task, holder, sprint_closed = await _task_for_change(session, org_id, task_id)
        if sprint_closed:
            raise Conflict(closed_sprint_message(sprint_closed))
        rule = check(task, action, actor, role, now, holder)
        old_status, old_owner_id = task.status, task.owner_id
        values = _after(task, action, rule, actor, now)
        result = await session.execute(
            _CHANGE_TASK,
            {"task_id": task.id, "seen_status": old_status, "seen_version": task.version} | values,
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            break
        # Someone changed the task between our read and our update: read it again,
        # so the refusal (or the retry) is based on what they did.
    else:
        raise Conflict("This task is changing very fast; try again in a moment.")

    for key, value in values.items():
        set_committed_value(task, key, value)
    # After an action the owner is the actor (take, or an owner's own action), nobody,
    # or (an organization owner reopening someone's task) who it was.
    owner = None
    if task.owner_id == actor.id:
        owner = actor
    elif task.owner_id is not None:
        owner = await session.get(User, task.owner_id)
    set_committed_value(task, "owner", owner)
    event = await append_event(
        session,
        type=rule.event_type,
        task=task,
        actor_id=actor.id,
        old_status=old_status,
        new_status=rule.target.value,
        owner_id=task.owner_id,
        previous_owner_id=old_owner_id,
        sprint_id=task.sprint_id,
        reason=reason if rule.frees else None,
    )
    return Change(task=task, event=event, action=action)


def closed_sprint_message(name: str) -> str:
    """What a refused change to a task of a completed sprint says."""
    return f"“{name}” is completed: its tasks are a record now and cannot change."


async def _task_for_change(
    session: AsyncSession, org_id: int, task_id: int
) -> tuple[Task, str | None, str | None]:
    """The task with this id in this organization, as it is now, its holder's name, and
    the name of its sprint if that sprint is completed.

    Raises NotFound if there is no such task here.
    """
    held = session.identity_map.get(identity_key(Task, task_id))
    if held is not None:
        # This session read it before; another transaction may have changed it since.
        session.expire(held)
    row = (
        await session.execute(_TASK_FOR_CHANGE, {"task_id": task_id, "org_id": org_id})
    ).one_or_none()
    if row is None:
        raise NotFound(f"There is no task #{task_id} here.")
    task, holder, sprint_name, sprint_status = row
    closed = sprint_name if sprint_status == SprintStatus.COMPLETED.value else None
    return task, holder, closed


def _after(
    task: Task, action: Action, rule: Rule, actor: User, now: dt.datetime
) -> dict[str, object]:
    """Every changeable column of the task as `action` leaves it."""
    values: dict[str, object] = {
        "status": rule.target.value,
        "version": task.version + 1,
        "updated_at": now,
        "owner_id": task.owner_id,
        "owned_at": task.owned_at,
        "estimate_hours": task.estimate_hours,
        "completed_at": task.completed_at,
    }
    if action is Action.TAKE:
        values |= {"owner_id": actor.id, "owned_at": now}
    elif action in (Action.RELEASE, Action.FREE):
        values |= {"owner_id": None, "owned_at": None, "estimate_hours": None}
    elif action is Action.COMPLETE:
        values["completed_at"] = now
    elif action is Action.REOPEN:
        values["completed_at"] = None
    return values
