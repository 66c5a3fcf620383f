"""Forms for stories and tasks, and the task page. Plain pages: they work without JS."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from quart import flash, g, redirect, render_template, request, url_for
from sqlalchemy.ext.asyncio import AsyncSession
from werkzeug.datastructures import MultiDict

from app.auth.guards import org_member_required, require_role
from app.board.view import load_sprint
from app.db import get_db
from app.errors import Invalid
from app.events.log import last_event_id, task_history
from app.models import Role, Story
from app.planning import bp
from app.tasks.editing import (
    CriterionFields,
    StoryFields,
    TaskFields,
    create_story,
    create_task,
    load_story,
    update_story,
    update_task,
)
from app.tasks.lifecycle import load_task
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
    page = live_page(cursor, task.story.sprint_id)
    return await render_template("tasks/page.html", task=task, history=history, **page)


def task_fields(form: MultiDict[str, str]) -> TaskFields:
    return TaskFields(
        title=form.get("title", ""),
        description=form.get("description", ""),
        ac_refs=form.getlist("ac_refs"),
        estimate_hours=form.get("estimate_hours") or None,  # type: ignore[arg-type]
    )


def story_fields(form: MultiDict[str, str], start: int) -> StoryFields:
    """The story's fields, with the blank criterion rows numbered from `start`."""
    criteria = [
        CriterionFields(
            form.get(f"ac-{n}-given", ""),
            form.get(f"ac-{n}-when", ""),
            form.get(f"ac-{n}-then", ""),
        )
        for n in range(start, start + BLANK_CRITERIA)
    ]
    return StoryFields(
        title=form.get("title", ""),
        description=form.get("description", ""),
        points=form.get("points", ""),  # type: ignore[arg-type]
        criteria=criteria,
    )


Save = Callable[[AsyncSession, MultiDict[str, str], Role], Awaitable[tuple[str, str]]]


async def form_page(template: str, save: Save, **context: Any) -> Any:
    """A plain form: GET shows it; POST saves it and goes on (303, with a message), or
    shows it again with the refusal's sentence (422) and what was typed.

    `save(db, form, role)` runs as one write, with the person's role there and then,
    and returns the message and where to go next."""
    form: MultiDict[str, str] = MultiDict()
    if request.method == "POST":
        form = await request.form
        try:
            message, where = await change_as_member(lambda db, role: save(db, form, role))
        except Invalid as error:
            return await render_template(template, form=form, error=error, **context), 422
        await flash(message, "success")
        return redirect(where), 303
    return await render_template(template, form=form, error=None, **context)


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
        task = await load_task(db, g.org.id, task_id)
    actor = g.user

    async def save(db: AsyncSession, form: MultiDict[str, str], role: Role) -> tuple[str, str]:
        fresh = await load_task(db, task.org_id, task.id)
        await update_task(db, task=fresh, fields=task_fields(form), actor=actor, role=role)
        return f"Saved {task.short_id}.", url_for("planning.task_page", org=org, task_id=task.id)

    return await form_page("tasks/form.html", save, story=task.story, task=task)


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
            db, org_id=org_id, sprint=sprint, fields=story_fields(form, 1), actor=actor, role=role
        )
        return f"Added the story “{story.title}”.", _board_or_story(org, story)

    return await form_page("stories/form.html", save, sprint=sprint, story=None, first_new=1)


@bp.route("/o/<org>/stories/<int:story_id>/edit", methods=["GET", "POST"])
@org_member_required
async def edit_story(org: str, story_id: int) -> Any:
    """Edit a story and its criteria, or add criteria (owners)."""
    require_role(Role.OWNER)
    async with get_db().read() as db:
        story = await load_story(db, g.org.id, story_id)
    first_new = max((c.number for c in story.criteria), default=0) + 1
    actor = g.user

    async def save(db: AsyncSession, form: MultiDict[str, str], role: Role) -> tuple[str, str]:
        edits = {
            c.number: CriterionFields(
                form.get(f"ac-{c.number}-given", c.given),
                form.get(f"ac-{c.number}-when", c.when),
                form.get(f"ac-{c.number}-then", c.then),
            )
            for c in story.criteria
        }
        fresh = await load_story(db, story.org_id, story.id)
        await update_story(
            db,
            story=fresh,
            fields=story_fields(form, first_new),
            edits=edits,
            actor=actor,
            role=role,
        )
        return f"Saved the story “{story.title}”.", _board_or_story(org, story)

    return await form_page("stories/form.html", save, sprint=None, story=story, first_new=first_new)


def _board_or_task(org: str, sprint_id: int | None, task_id: int) -> str:
    if sprint_id:
        return url_for("board.board", org=org, sprint_id=sprint_id) + f"#task-{task_id}"
    return url_for("planning.task_page", org=org, task_id=task_id)


def _board_or_story(org: str, story: Story) -> str:
    if story.sprint_id:
        return (
            url_for("board.board", org=org, sprint_id=story.sprint_id) + f"#group-story-{story.id}"
        )
    return url_for("board.sprints", org=org)
