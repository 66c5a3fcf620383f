"""Forms for stories and tasks, and the task page. Plain pages: they work without JS."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from quart import flash, g, redirect, render_template, request, url_for
from sqlalchemy.ext.asyncio import AsyncSession
from werkzeug.datastructures import MultiDict

from app.auth.guards import org_member_required, require_role
from app.db import get_db
from app.errors import Invalid
from app.events.log import last_event_id, task_history
from app.inputs import whole_number
from app.live.presence import Where
from app.live.streams import live_updates
from app.models import Role, Sprint, Story
from app.stories import bp
from app.tasks.board import load_sprint
from app.tasks.editing import (
    CriterionFields,
    StoryFields,
    TaskFields,
    create_story,
    create_task,
    load_story,
    story_values,
    task_values,
    update_story,
    update_task,
)
from app.tasks.lifecycle import load_task
from app.tasks.merging import EditConflict, FieldConflict, labels
from app.tasks.tidying import story_choices
from app.web import change_as_member, live_page

BLANK_CRITERIA = 3


@bp.get("/o/<org>/tasks/<int:task_id>")
@org_member_required
async def task_page(org: str, task_id: int) -> Any:
    """Show a task, the criteria it serves, and its history, newest first."""
    async with get_db().read() as db:
        # The cursor first, as on the board: an event committed between the reads is
        # replayed to the page rather than missed.
        cursor = await last_event_id(db, g.org.id)
        task = await load_task(db, g.org.id, task_id)
        history = await task_history(db, g.org.id, task.id)
        sprint = await db.get(Sprint, task.sprint_id) if task.sprint_id else None
        choices = await story_choices(db, g.org.id, task)
    page = live_page(cursor, task.sprint_id)
    return await render_template(
        "tasks/page.html",
        task=task,
        history=history,
        closed=bool(sprint and sprint.closed),
        sprint=sprint,
        choices=choices,
        **page,
    )


def task_fields(form: MultiDict[str, str]) -> TaskFields:
    return TaskFields(
        title=form.get("title", ""),
        description=form.get("description", ""),
        ac_refs=form.getlist("ac_refs"),
        estimate_hours=form.get("estimate_hours") or None,  # type: ignore[arg-type]
    )


def story_fields(form: MultiDict[str, str]) -> StoryFields:
    """The story's fields, with what its blank criterion rows (`new-1-given`, …) hold."""
    criteria = [
        CriterionFields(
            form.get(f"new-{k}-given", ""),
            form.get(f"new-{k}-when", ""),
            form.get(f"new-{k}-then", ""),
        )
        for k in range(1, BLANK_CRITERIA + 1)
    ]
    return StoryFields(
        title=form.get("title", ""),
        description=form.get("description", ""),
        points=form.get("points", ""),  # type: ignore[arg-type]
        criteria=criteria,
    )


Save = Callable[[AsyncSession, MultiDict[str, str], Role], Awaitable[tuple[str, str]]]
Hidden = list[tuple[str, str]]


async def form_page(
    template: str, save: Save, *, opened: Hidden | None = None, **context: Any
) -> Any:
    """A plain form: GET shows it; POST saves it and goes on (303, with a message), or
    shows it again with what was typed: with the refusal's sentence (422), or with the
    fields someone else changed meanwhile beside the person's own (409).

    `save(db, form, role)` runs as one write, with the person's role there and then,
    and returns the message and where to go next. `opened` are the hidden fields an
    edit page carries (its version and the values it showed); a page shown again keeps
    the ones it was sent with, except after a conflict, when they are the current ones
    (so that saving again applies the person's text)."""
    form: MultiDict[str, str] = MultiDict()
    conflicts: dict[str, FieldConflict] = {}
    hidden = opened or []
    if request.method == "POST":
        form = await request.form
        hidden = [(k, v) for k, v in form.items(multi=True) if k in OPENED or k.startswith("base-")]
        try:
            message, where = await change_as_member(lambda db, role: save(db, form, role))
        except Invalid as error:
            context = {**context, "conflicts": conflicts, "hidden": hidden}
            return await render_template(template, form=form, form_error=error, **context), 422
        except EditConflict as conflict:
            conflicts = {c.name: c for c in conflict.conflicts}
            form = MultiDict(form)  # the person's text, but what others changed elsewhere
            merged = _grouped(base_fields(conflict.merged, prefix=""))
            if "ac_refs" in conflict.merged:  # none ticked now is a value too
                merged.setdefault("ac_refs", [])
            for name, values in merged.items():
                form.setlist(name, values)
            hidden = [
                *((k, v) for k, v in hidden if not (k == "version" or k.startswith("base-"))),
                ("version", str(conflict.version)),
                *base_fields(conflict.current),
            ]
            context = {**context, "conflicts": conflicts, "hidden": hidden}
            return await render_template(template, form=form, form_error=conflict, **context), 409
        await flash(message, "success")
        return redirect(where), 303
    context = {**context, "conflicts": conflicts, "hidden": hidden}
    return await render_template(template, form=form, form_error=None, **context)


# The hidden fields of an edit page besides its `base-…` values.
OPENED = ("version", "first_new")


def base_fields(values: Mapping[str, Any], prefix: str = "base-") -> Hidden:
    """Stored values (`task_values`, `story_values`) as an edit page's hidden `base-…`
    fields, named as the inputs they stand beside (with `prefix` "": as those inputs)."""
    hidden: Hidden = []
    for name, value in values.items():
        if name == "ac_refs":
            hidden += [(f"{prefix}ac_refs", ref) for ref in value]
        elif name.startswith("ac-"):
            hidden += [
                (f"{prefix}{name}-{part}", text) for part, text in zip(PARTS, value, strict=True)
            ]
        else:
            hidden.append((f"{prefix}{name}", "" if value is None else str(value)))
    return hidden


def _grouped(pairs: Hidden) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    return grouped


PARTS = ("given", "when", "then")


def opened_version(form: MultiDict[str, str]) -> int | None:
    """The version the page was opened at (None when it does not say)."""
    return whole_number(form.get("version", "").strip())


def task_base(form: MultiDict[str, str]) -> TaskFields | None:
    """The values the page showed, as its hidden fields say (None when they do not)."""
    if "base-title" not in form:
        return None
    return TaskFields(
        title=form.get("base-title", ""),
        description=form.get("base-description", ""),
        ac_refs=form.getlist("base-ac_refs"),
        estimate_hours=form.get("base-estimate_hours") or None,  # type: ignore[arg-type]
    )


@bp.route("/o/<org>/stories/<int:story_id>/tasks/new", methods=["GET", "POST"])
@org_member_required
async def new_task(org: str, story_id: int) -> Any:
    """Add a task to a story (members and owners)."""
    require_role(Role.MEMBER)
    async with get_db().read() as db:
        story = await load_story(db, g.org.id, story_id)
    actor = g.user

    async def save(db: AsyncSession, form: MultiDict[str, str], role: Role) -> tuple[str, str]:
        fresh = await load_story(db, story.org_id, story.id)
        task, _event = await create_task(
            db, story=fresh, fields=task_fields(form), actor=actor, role=role
        )
        return f"Added {task.short_id} “{task.title}”.", _board_or_task(
            org, story.sprint_id, task.id
        )

    return await form_page("tasks/form.html", save, story=story, task=None)


@bp.route("/o/<org>/tasks/<int:task_id>/edit", methods=["GET", "POST"])
@org_member_required
async def edit_task(org: str, task_id: int) -> Any:
    """Edit a task's title, description, criteria and estimate (members and owners)."""
    require_role(Role.MEMBER)
    async with get_db().read() as db:
        cursor = await last_event_id(db, g.org.id)  # first: see task_page
        task = await load_task(db, g.org.id, task_id)
    actor = g.user

    async def save(db: AsyncSession, form: MultiDict[str, str], role: Role) -> tuple[str, str]:
        fresh = await load_task(db, task.org_id, task.id, for_update=True)
        saved = await update_task(
            db,
            task=fresh,
            fields=task_fields(form),
            actor=actor,
            role=role,
            version=opened_version(form),
            base=task_base(form),
        )
        where = url_for("stories.task_page", org=org, task_id=task.id)
        if saved is None:
            return f"Nothing to save: {task.short_id} is as you left it.", where
        return f"Saved {task.short_id} ({labels(saved.fields.split(','))}).", where

    opened = [("version", str(task.version)), *base_fields(task_values(task))]
    live = edit_page(cursor, task.sprint_id, Where(task_id=task.id, editing=True))
    return await form_page(
        "tasks/form.html", save, opened=opened, story=task.story, task=task, **live
    )


@bp.route("/o/<org>/sprints/<int:sprint_id>/stories/new", methods=["GET", "POST"])
@org_member_required
async def new_story(org: str, sprint_id: int) -> Any:
    """Add a story to a sprint, with acceptance criteria (owners)."""
    require_role(Role.OWNER)
    async with get_db().read() as db:
        sprint = await load_sprint(db, g.org.id, sprint_id)
    org_id, actor = g.org.id, g.user

    async def save(db: AsyncSession, form: MultiDict[str, str], role: Role) -> tuple[str, str]:
        story = await create_story(
            db, org_id=org_id, sprint=sprint, fields=story_fields(form), actor=actor, role=role
        )
        return f"Added the story “{story.title}”.", _board_or_story(org, story)

    return await form_page("stories/form.html", save, sprint=sprint, story=None, first_new=1)


@bp.route("/o/<org>/backlog/stories/new", methods=["GET", "POST"])
@org_member_required
async def new_backlog_story(org: str) -> Any:
    """Add a story straight into the backlog (owners): the same form as a sprint's."""
    require_role(Role.OWNER)
    org_id, actor = g.org.id, g.user

    async def save(db: AsyncSession, form: MultiDict[str, str], role: Role) -> tuple[str, str]:
        story = await create_story(
            db, org_id=org_id, sprint=None, fields=story_fields(form), actor=actor, role=role
        )
        return f"Added the story “{story.title}” to the backlog.", _board_or_story(org, story)

    return await form_page(
        "stories/form.html", save, sprint=None, story=None, first_new=1, backlog=True
    )


@bp.route("/o/<org>/stories/<int:story_id>/edit", methods=["GET", "POST"])
@org_member_required
async def edit_story(org: str, story_id: int) -> Any:
    """Edit a story and its criteria, or add criteria (owners)."""
    require_role(Role.OWNER)
    async with get_db().read() as db:
        cursor = await last_event_id(db, g.org.id)  # first: see task_page
        story = await load_story(db, g.org.id, story_id)
    first_new = max((c.number for c in story.criteria), default=0) + 1
    actor = g.user

    async def save(db: AsyncSession, form: MultiDict[str, str], role: Role) -> tuple[str, str]:
        # The criteria the page showed are the ones numbered below its first blank row;
        # any added since it was opened are not on it, and stay as they are.
        shown = whole_number(form.get("first_new", "")) or first_new
        fresh = await load_story(db, story.org_id, story.id, for_update=True)
        on_page = [c for c in fresh.criteria if c.number < shown]
        edits = {c.number: criterion_from(form, c.number, c) for c in on_page}
        base = None
        if "base-title" in form:
            base = (
                StoryFields(
                    title=form.get("base-title", ""),
                    description=form.get("base-description", ""),
                    points=form.get("base-points", ""),  # type: ignore[arg-type]
                ),
                {c.number: criterion_from(form, c.number, c, "base-") for c in on_page},
            )
        saved = await update_story(
            db,
            story=fresh,
            fields=story_fields(form),
            edits=edits,
            actor=actor,
            role=role,
            version=opened_version(form),
            base=base,
        )
        if saved is None:
            return f"Nothing to save: “{story.title}” is as you left it.", _board_or_story(
                org, story
            )
        return f"Saved the story “{fresh.title}”.", _board_or_story(org, story)

    opened = [
        ("version", str(story.version)),
        ("first_new", str(first_new)),
        *base_fields(story_values(story)),
    ]
    live = edit_page(cursor, story.sprint_id, Where(story_id=story.id, editing=True))
    return await form_page(
        "stories/form.html",
        save,
        opened=opened,
        sprint=None,
        story=story,
        first_new=first_new,
        **live,
    )


def edit_page(cursor: int, sprint_id: int | None, where: Where) -> dict[str, Any]:
    """What a live edit page is rendered with: the board's live context, the stream's
    query (the page's place on its sprint, for presence), and who else is editing the
    same thing now."""
    page = live_page(cursor, sprint_id)
    query = f"?after={cursor}"
    if sprint_id is not None:
        place = f"task={where.task_id}" if where.task_id else f"story={where.story_id}"
        query = f"?sprint={sprint_id}&{place}&editing=1&after={cursor}"
    others = live_updates().presence.viewers((g.org.id, sprint_id)) if sprint_id else []
    editing_too = [
        seen.name
        for seen in others
        if seen.editing
        and seen.user_id != g.user.id
        and seen.task_id == where.task_id
        and seen.story_id == where.story_id
    ]
    return {**page, "stream_query": query, "where": where, "editing_too": editing_too}


def criterion_from(
    form: MultiDict[str, str], number: int, stored: CriterionFields | Any, prefix: str = ""
) -> CriterionFields:
    """Criterion `number` as the form gives it (`prefix` "base-" for what the page
    showed); a part the form leaves out is the stored one."""
    given, when, then = (
        form.get(f"{prefix}ac-{number}-{part}", getattr(stored, part)) for part in PARTS
    )
    return CriterionFields(given, when, then)


def _board_or_task(org: str, sprint_id: int | None, task_id: int) -> str:
    if sprint_id:
        return url_for("board.board", org=org, sprint_id=sprint_id) + f"#task-{task_id}"
    return url_for("stories.task_page", org=org, task_id=task_id)


def _board_or_story(org: str, story: Story) -> str:
    if story.sprint_id:
        return (
            url_for("board.board", org=org, sprint_id=story.sprint_id) + f"#group-story-{story.id}"
        )
    return url_for("backlog.page", org=org) + f"#backlog-story-{story.id}"
