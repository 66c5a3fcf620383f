"""Create and edit stories and tasks: validation and events, in one place."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from app.auth.accounts import require_contributor, require_owner
from app.db import find_in_org, utcnow
from app.errors import Invalid
from app.events.log import append_event, append_story_event
from app.inputs import whole_number
from app.models import AcceptanceCriterion, Role, Sprint, Story, Task, TaskEvent, User

TITLE_MAX = 200
DESCRIPTION_MAX = 10_000


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
    text = str(value or "").strip()
    if "\x00" in text:
        raise Invalid("A description cannot contain NUL characters.", field="description")
    if len(text) > DESCRIPTION_MAX:
        raise Invalid(
            f"Keep the description under {DESCRIPTION_MAX:,} characters.", field="description"
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


async def load_story(session: AsyncSession, org_id: int, story_id: int) -> Story:
    return await find_in_org(session, Story, org_id, story_id, what="story")


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
    now = utcnow()
    task = Task(
        org_id=story.org_id,
        story_id=story.id,
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
        type="task_created",
        task=task,
        actor_id=actor.id,
        new_status=task.status,
        sprint_id=story.sprint_id,
    )
    return task, event


async def update_task(
    session: AsyncSession,
    *,
    task: Task,
    fields: TaskFields,
    actor: User,
    role: Role,
) -> TaskEvent:
    """Edit a task's words, AC references and estimate; log `task_updated`."""
    require_contributor(role)
    task.title = clean_title(fields.title)
    task.description = clean_description(fields.description)
    task.ac_refs = clean_ac_refs(task.story, fields.ac_refs)
    estimate = parse_estimate(fields.estimate_hours)
    task.estimate_hours = estimate
    task.version += 1
    task.updated_at = utcnow()
    await session.flush()
    return await append_event(
        session,
        type="task_updated",
        task=task,
        actor_id=actor.id,
        old_status=task.status,
        new_status=task.status,
        owner_id=task.owner_id,
        sprint_id=task.story.sprint_id,
    )


async def create_story(
    session: AsyncSession,
    *,
    org_id: int,
    sprint: Sprint | None,
    fields: StoryFields,
    actor: User,
    role: Role,
) -> Story:
    """Add a story at the end of its sprint, with its criteria; log `story_created`."""
    require_owner(role)
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
    await append_story_event(session, type="story_created", story=story, actor_id=actor.id)
    return story


async def update_story(
    session: AsyncSession,
    *,
    story: Story,
    fields: StoryFields,
    edits: dict[int, CriterionFields],
    actor: User,
    role: Role,
) -> Story:
    """Edit a story; `edits` rewrites criteria by number, new ones are appended.

    Logs `story_updated`."""
    require_owner(role)
    story.title = clean_title(fields.title, "story")
    story.description = clean_description(fields.description)
    story.points = parse_points(fields.points)
    story.updated_at = utcnow()
    for criterion in story.criteria:
        if criterion.number in edits:
            new = edits[criterion.number]
            criterion.given, criterion.when, criterion.then = new.given, new.when, new.then
    _add_criteria(story, fields.criteria)
    await session.flush()
    await append_story_event(session, type="story_updated", story=story, actor_id=actor.id)
    return story


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
                given=fields.given.strip(),
                when=fields.when.strip(),
                then=fields.then.strip(),
            )
        )
