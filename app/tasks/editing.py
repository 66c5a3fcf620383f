"""Create and edit stories and tasks: validation and events, in one place."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from app.auth.accounts import require_contributor, require_owner
from app.db import find_in_org, utcnow
from app.errors import Conflict, Invalid
from app.events.log import append_event, append_story_event
from app.events.types import EventType
from app.inputs import whole_number
from app.models import (
    AcceptanceCriterion,
    Role,
    Sprint,
    SprintStatus,
    Story,
    Task,
    TaskEvent,
    User,
)
from app.tasks.lifecycle import archived_message, closed_sprint_message
from app.tasks.merging import EditConflict, FieldConflict, Opened, merge
from app.tasks.places import lock_places

TITLE_MAX = 200
DESCRIPTION_MAX = 10_000
CRITERION_MAX = 500  # each of given, when and then


@dataclass(frozen=True)
class TaskFields:
    """What a person fills in for a task."""

    title: str
    description: str = ""
    ac_refs: Sequence[str] = ()
    estimate_hours: int | None = None


@dataclass(frozen=True)
class CriterionFields:
    given: str
    when: str
    then: str


@dataclass(frozen=True)
class StoryFields:
    """What a person fills in for a story; new criteria are appended (AC numbers stay)."""

    title: str
    description: str = ""
    points: int = 1
    criteria: Sequence[CriterionFields] = ()


def clean_title(value: object, what: str = "task") -> str:
    """A trimmed, non-empty title of at most 200 characters, or Invalid."""
    title = " ".join(str(value or "").split())
    if any(ord(c) < 32 or ord(c) == 127 for c in title):
        raise Invalid("A title cannot contain control characters.", field="title")
    if not title:
        raise Invalid(f"A {what} needs a title.", field="title")
    if len(title) > TITLE_MAX:
        raise Invalid(f"Keep the title under {TITLE_MAX} characters.", field="title")
    return title


def clean_description(value: object) -> str:
    """Trimmed, with one kind of line break (browsers send \r\n, scripts \n: the same
    text must compare equal, or an untouched description would look changed)."""
    text = str(value or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    if "\x00" in text:
        raise Invalid("A description cannot contain NUL characters.", field="description")
    if len(text) > DESCRIPTION_MAX:
        raise Invalid(
            f"Keep the description under {DESCRIPTION_MAX:,} characters.", field="description"
        )
    return text


def one_line(value: str) -> str:
    """A criterion's part as one line (a form's input cannot hold a line break, so one
    sent through the API would differ from every page's copy of it), or Invalid if it
    is longer than CRITERION_MAX."""
    text = " ".join(value.split())
    if len(text) > CRITERION_MAX:
        raise Invalid(
            f"Each part of a criterion can be at most {CRITERION_MAX} characters "
            f"(one has {len(text)}).",
            field="criteria",
        )
    return text


def parse_whole(value: object, *, field: str, low: int, high: int, what: str) -> int | None:
    """An optional whole number between low and high ("" means none)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise Invalid(f"{what} must be a whole number from {low} to {high}.", field=field)
    number = value if isinstance(value, int) else whole_number(str(value).strip())
    if number is None:
        raise Invalid(f"{what} must be a whole number from {low} to {high}.", field=field)
    if not low <= number <= high:
        raise Invalid(f"{what} must be from {low} to {high}.", field=field)
    return number


def parse_estimate(value: object) -> int | None:
    return parse_whole(value, field="estimate_hours", low=1, high=40, what="The estimate (hours)")


def parse_points(value: object) -> int:
    points = parse_whole(value, field="points", low=1, high=8, what="Story points")
    if points is None:
        raise Invalid("Give the story between 1 and 8 points.", field="points")
    return points


def clean_ac_refs(story: Story, refs: Iterable[object]) -> list[str]:
    """The story's AC labels among `refs`, in AC order; unknown labels are Invalid."""
    known = {c.label: c.number for c in story.criteria}
    wanted = {str(r).strip().upper() for r in refs if str(r).strip()}
    unknown = sorted(wanted - known.keys())
    if unknown:
        raise Invalid(
            f"“{story.title}” has no {', '.join(unknown)}"
            + (f" (it has {', '.join(known)})." if known else " (it has no acceptance criteria)."),
            field="acceptance_criteria_refs",
        )
    return sorted(wanted, key=known.__getitem__)


async def _place_for_new_task(session: AsyncSession, story: Story) -> int | None:
    """Where a task added to `story` goes: where the story is now. Its place and then
    its row are locked (places.py's order), so a move or a completion in flight commits
    first and the task joins the story where it went; a completed sprint takes none."""
    seen = await session.scalar(select(Story.sprint_id).where(Story.id == story.id))
    places = await lock_places(session, story.org_id, [seen], shared=True)
    now, archived_at = (
        await session.execute(
            select(Story.sprint_id, Story.archived_at).where(Story.id == story.id).with_for_update()
        )
    ).one()
    if archived_at is not None:  # archived meanwhile (its row is ours now: it stays so)
        raise Conflict(archived_message(story.title))
    if now != seen:  # moved between the two reads (locking its new place now would
        # break the order): nothing is written, and the person tries again
        raise Conflict(f"“{story.title}” moved a moment ago; look again and retry.")
    if seen is not None and places[seen].closed:
        raise Conflict(closed_sprint_message(places[seen].name))
    return seen


async def refuse_if_closed(session: AsyncSession, sprint_id: int | None) -> None:
    """Conflict if the sprint is completed: its tasks are a record, and nothing is added
    to it."""
    if sprint_id is None:
        return
    row = (
        await session.execute(select(Sprint.name, Sprint.status).where(Sprint.id == sprint_id))
    ).one()
    if row.status == SprintStatus.COMPLETED.value:
        raise Conflict(closed_sprint_message(row.name))


async def load_story(
    session: AsyncSession, org_id: int, story_id: int, *, for_update: bool = False
) -> Story:
    """The story with this id in this organization, or NotFound (see `load_task`)."""
    return await find_in_org(session, Story, org_id, story_id, what="story", for_update=for_update)


async def create_task(
    session: AsyncSession,
    *,
    story: Story,
    fields: TaskFields,
    actor: User,
    role: Role,
) -> tuple[Task, TaskEvent]:
    """Add an available task to a story and log `task_created`."""
    require_contributor(role)
    if story.archived_at is not None:
        raise Conflict(archived_message(story.title))
    sprint_id = await _place_for_new_task(session, story)
    now = utcnow()
    task = Task(
        org_id=story.org_id,
        story_id=story.id,
        sprint_id=sprint_id,
        title=clean_title(fields.title),
        description=clean_description(fields.description),
        ac_refs=clean_ac_refs(story, fields.ac_refs),
        estimate_hours=parse_estimate(fields.estimate_hours),
        created_at=now,
        updated_at=now,
    )
    session.add(task)
    await session.flush()
    set_committed_value(task, "story", story)
    set_committed_value(task, "owner", None)
    event = await append_event(
        session,
        type=EventType.TASK_CREATED,
        task=task,
        actor_id=actor.id,
        new_status=task.status,
        sprint_id=sprint_id,
    )
    return task, event


def task_values(task: Task) -> dict[str, Any]:
    """A task's editable fields as stored, in the shape a form's are cleaned to."""
    return {
        "title": task.title,
        "description": task.description,
        "ac_refs": tuple(task.ac_refs or ()),
        "estimate_hours": task.estimate_hours,
    }


def clean_task_values(story: Story, fields: TaskFields) -> dict[str, Any]:
    """What a person typed, checked and cleaned (Invalid names the first bad field)."""
    return {
        "title": clean_title(fields.title),
        "description": clean_description(fields.description),
        "ac_refs": tuple(clean_ac_refs(story, fields.ac_refs)),
        "estimate_hours": parse_estimate(fields.estimate_hours),
    }


async def update_task(
    session: AsyncSession,
    *,
    task: Task,
    fields: TaskFields,
    actor: User,
    role: Role,
    version: int | None = None,
    base: TaskFields | None = None,
) -> TaskEvent | None:
    """Apply the fields this person changed since `version` (the page's; None: now),
    whose values then were `base`; log `task_updated` naming them. EditConflict when
    someone else changed one of them to another value meanwhile; None when nothing
    changed."""
    require_contributor(role)
    if task.archived:
        raise Conflict(archived_message(task.title))
    await refuse_if_closed(session, task.sprint_id)
    mine = clean_task_values(task.story, fields)
    theirs = task_values(task)
    opened = None if version is None else Opened(version, _loose(task.story, base))
    changes, clashing = merge(opened, task.version, mine, theirs)
    if clashing:
        raise EditConflict(
            "task",
            await _conflicts(session, clashing, mine, theirs, TaskEvent.task_id == task.id),
            task.version,
            theirs,
            _untouched(mine, theirs, changes, clashing),
        )
    if not changes:
        return None
    for name, value in changes.items():
        setattr(task, name, list(value) if name == "ac_refs" else value)
    task.version += 1
    task.updated_at = utcnow()
    await session.flush()
    return await append_event(
        session,
        type=EventType.TASK_UPDATED,
        task=task,
        actor_id=actor.id,
        old_status=task.status,
        new_status=task.status,
        owner_id=task.owner_id,
        sprint_id=task.sprint_id,
        fields=list(changes),
    )


def _untouched(
    mine: Mapping[str, Any],
    theirs: Mapping[str, Any],
    changes: Mapping[str, Any],
    clashing: Sequence[str],
) -> dict[str, Any]:
    """The fields neither this person changed nor clash, as they are now stored."""
    return {n: theirs[n] for n in mine if n in theirs and n not in changes and n not in clashing}


def _loose(story: Story, base: TaskFields | None) -> dict[str, Any] | None:
    """The values a page showed, cleaned as a save is; None if they cannot be read
    (every field that differs then counts as a conflict: nothing is lost)."""
    if base is None:
        return None
    try:
        return clean_task_values(story, base)
    except Invalid:
        return None


async def _conflicts(
    session: AsyncSession,
    names: Sequence[str],
    mine: Mapping[str, Any],
    theirs: Mapping[str, Any],
    which: ColumnElement[bool],
) -> list[FieldConflict]:
    """Each clashing field with who changed it last and when, from the event log (an
    edit names its fields; giving a task up clears its estimate)."""
    changing = [t for t in EventType if t.is_edit] + [EventType.OWNERSHIP_RELEASED]
    rows = await session.scalars(
        select(TaskEvent)
        .where(which, TaskEvent.type.in_(changing))
        .order_by(TaskEvent.id.desc())
        .limit(200)
    )
    last: dict[str, TaskEvent] = {}
    for event in rows:
        released = event.type == EventType.OWNERSHIP_RELEASED
        for name in ["estimate_hours"] if released else (event.fields or "").split(","):
            last.setdefault(name, event)
    found = []
    for name in names:
        changed = last.get(name)
        who = changed.actor.name if changed is not None and changed.actor is not None else None
        when = changed.created_at if changed is not None else None
        found.append(FieldConflict(name, theirs.get(name), mine.get(name), who, when))
    return found


async def create_story(
    session: AsyncSession,
    *,
    org_id: int,
    sprint: Sprint | None,
    fields: StoryFields,
    actor: User,
    role: Role,
) -> Story:
    """Add a story at the end of its sprint (None: the backlog), with its criteria; log
    `story_created`. A completed sprint takes no new stories."""
    require_owner(role)
    # Its place held (places.py): a completion in flight commits first, and is seen.
    places = await lock_places(session, org_id, [sprint.id if sprint else None], shared=True)
    if sprint is not None and places[sprint.id].closed:
        raise Conflict(closed_sprint_message(places[sprint.id].name))
    last = await session.scalar(
        select(func.max(Story.position)).where(
            Story.org_id == org_id,
            Story.sprint_id == (sprint.id if sprint else None),
        )
    )
    now = utcnow()
    story = Story(
        org_id=org_id,
        sprint_id=sprint.id if sprint else None,
        title=clean_title(fields.title, "story"),
        description=clean_description(fields.description),
        points=parse_points(fields.points),
        position=(last or 0) + 1,
        created_at=now,
        updated_at=now,
    )
    session.add(story)
    await session.flush()
    set_committed_value(story, "criteria", [])
    _add_criteria(story, fields.criteria)
    await session.flush()
    await append_story_event(session, type=EventType.STORY_CREATED, story=story, actor_id=actor.id)
    return story


def story_values(story: Story) -> dict[str, Any]:
    """A story's editable fields as stored: each criterion is a field of its own
    (`ac-<number>`: its given, when and then)."""
    values: dict[str, Any] = {
        "title": story.title,
        "description": story.description,
        "points": story.points,
    }
    for c in story.criteria:
        values[f"ac-{c.number}"] = (c.given, c.when, c.then)
    return values


def clean_story_values(fields: StoryFields, edits: Mapping[int, CriterionFields]) -> dict[str, Any]:
    values: dict[str, Any] = {
        "title": clean_title(fields.title, "story"),
        "description": clean_description(fields.description),
        "points": parse_points(fields.points),
    }
    for number, c in edits.items():
        values[f"ac-{number}"] = (one_line(c.given), one_line(c.when), one_line(c.then))
    return values


async def update_story(
    session: AsyncSession,
    *,
    story: Story,
    fields: StoryFields,
    edits: dict[int, CriterionFields],
    actor: User,
    role: Role,
    version: int | None = None,
    base: tuple[StoryFields, dict[int, CriterionFields]] | None = None,
) -> TaskEvent | None:
    """Edit a story: `edits` rewrites criteria by number, new ones in `fields` are
    appended. Only what this person changed since `version` (the page's, whose values
    were `base`) is applied, as for a task; a criterion someone else reworded meanwhile
    is a conflict like any field. Logs `story_updated` naming what changed; None when
    nothing did."""
    require_owner(role)
    if story.archived_at is not None:
        raise Conflict(archived_message(story.title))
    await refuse_if_closed(session, story.sprint_id)
    mine = clean_story_values(fields, edits)
    theirs = story_values(story)
    seen = None
    if base is not None:
        try:
            seen = clean_story_values(*base)
        except Invalid:
            seen = None
    opened = None if version is None else Opened(version, seen)
    changes, clashing = merge(opened, story.version, mine, theirs)
    if clashing:
        raise EditConflict(
            "story",
            await _conflicts(
                session,
                clashing,
                mine,
                theirs,
                (TaskEvent.story_id == story.id) & TaskEvent.task_id.is_(None),
            ),
            story.version,
            theirs,
            _untouched(mine, theirs, changes, clashing),
        )
    before = len(story.criteria)
    _add_criteria(story, fields.criteria)
    added = [f"ac-{c.number}" for c in story.criteria[before:]]
    if not changes and not added:
        return None
    for name, value in changes.items():
        if name.startswith("ac-"):
            criterion = next(c for c in story.criteria if f"ac-{c.number}" == name)
            criterion.given, criterion.when, criterion.then = value
        else:
            setattr(story, name, value)
    story.version += 1
    story.updated_at = utcnow()
    await session.flush()
    return await append_story_event(
        session,
        type=EventType.STORY_UPDATED,
        story=story,
        actor_id=actor.id,
        fields=[*changes, *added],
    )


def _add_criteria(story: Story, criteria: Iterable[CriterionFields]) -> None:
    number = max((c.number for c in story.criteria), default=0)
    for fields in criteria:
        if not (fields.given or fields.when or fields.then):
            continue
        number += 1
        story.criteria.append(
            AcceptanceCriterion(
                org_id=story.org_id,
                story_id=story.id,
                number=number,
                given=one_line(fields.given),
                when=one_line(fields.when),
                then=one_line(fields.then),
            )
        )
