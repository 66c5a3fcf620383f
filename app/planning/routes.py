"""Forms for stories and tasks, and the task page. Plain pages: they work without JS."""

from __future__ import annotations

from typing import Any

from quart import flash, g, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from app.auth.guards import get_db, org_member_required, require_role
from app.board.view import load_sprint
from app.errors import Invalid
from app.events.log import task_history
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

BLANK_CRITERIA = 3


@bp.get("/o/<org>/tasks/<int:task_id>")
@org_member_required
async def task_page(org: str, task_id: int) -> Any:
    """Show a task, the criteria it serves, and its history, newest first."""
    async with get_db().read() as db:
        task = await load_task(db, g.org.id, task_id)
        history = await task_history(db, g.org.id, task.id)
    return await render_template("tasks/page.html", task=task, history=history)


def task_fields(form: MultiDict[str, str]) -> TaskFields:
    return TaskFields(
        title=form.get("title", ""),
        description=form.get("description", ""),
        ac_refs=form.getlist("ac_refs"),
        estimate_hours=form.get("estimate_hours") or None,  # type: ignore[arg-type]
    )


@bp.route("/o/<org>/stories/<int:story_id>/tasks/new", methods=["GET", "POST"])
@org_member_required
async def new_task(org: str, story_id: int) -> Any:
    """Add a task to a story (members and owners)."""
    require_role(Role.MEMBER)
    async with get_db().read() as db:
        story = await load_story(db, g.org.id, story_id)
    form: MultiDict[str, str] = MultiDict()
    if request.method == "POST":
        form = await request.form
        user, role = g.user, g.role

        async def create(db: Any) -> Any:
            fresh = await load_story(db, story.org_id, story.id)
            return await create_task(
                db, story=fresh, fields=task_fields(form), actor=user, role=role
            )

        try:
            task, _event = await get_db().write(create)
        except Invalid as error:
            return await render_template(
                "tasks/form.html", story=story, task=None, form=form, error=error
            ), 422
        await flash(f"Added {task.short_id} “{task.title}”.", "success")
        return redirect(_board_or_task(org, story.sprint_id, task.id)), 303
    return await render_template("tasks/form.html", story=story, task=None, form=form, error=None)


@bp.route("/o/<org>/tasks/<int:task_id>/edit", methods=["GET", "POST"])
@org_member_required
async def edit_task(org: str, task_id: int) -> Any:
    """Edit a task's title, description, criteria and estimate (members and owners)."""
    require_role(Role.MEMBER)
    async with get_db().read() as db:
        task = await load_task(db, g.org.id, task_id)
    form: MultiDict[str, str] = MultiDict()
    if request.method == "POST":
        form = await request.form
        user, role = g.user, g.role

        async def edit(db: Any) -> Any:
            fresh = await load_task(db, task.org_id, task.id)
            return await update_task(
                db, task=fresh, fields=task_fields(form), actor=user, role=role
            )

        try:
            await get_db().write(edit)
        except Invalid as error:
            return await render_template(
                "tasks/form.html", story=task.story, task=task, form=form, error=error
            ), 422
        await flash(f"Saved {task.short_id}.", "success")
        return redirect(url_for("planning.task_page", org=org, task_id=task.id)), 303
    return await render_template(
        "tasks/form.html", story=task.story, task=task, form=form, error=None
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


@bp.route("/o/<org>/sprints/<int:sprint_id>/stories/new", methods=["GET", "POST"])
@org_member_required
async def new_story(org: str, sprint_id: int) -> Any:
    """Add a story to a sprint, with acceptance criteria (owners)."""
    require_role(Role.OWNER)
    async with get_db().read() as db:
        sprint = await load_sprint(db, g.org.id, sprint_id)
    form: MultiDict[str, str] = MultiDict()
    if request.method == "POST":
        form = await request.form
        org_id, user, role = g.org.id, g.user, g.role

        async def create(db: Any) -> Story:
            return await create_story(
                db,
                org_id=org_id,
                sprint=sprint,
                fields=story_fields(form, 1),
                actor=user,
                role=role,
            )

        try:
            story = await get_db().write(create)
        except Invalid as error:
            return await render_template(
                "stories/form.html", sprint=sprint, story=None, form=form, error=error, first_new=1
            ), 422
        await flash(f"Added the story “{story.title}”.", "success")
        return redirect(
            url_for("board.board", org=org, sprint_id=sprint_id) + f"#group-story-{story.id}"
        ), 303
    return await render_template(
        "stories/form.html", sprint=sprint, story=None, form=form, error=None, first_new=1
    )


@bp.route("/o/<org>/stories/<int:story_id>/edit", methods=["GET", "POST"])
@org_member_required
async def edit_story(org: str, story_id: int) -> Any:
    """Edit a story and its criteria, or add criteria (owners)."""
    require_role(Role.OWNER)
    async with get_db().read() as db:
        story = await load_story(db, g.org.id, story_id)
    first_new = max((c.number for c in story.criteria), default=0) + 1
    form: MultiDict[str, str] = MultiDict()
    if request.method == "POST":
        form = await request.form
        user, role = g.user, g.role
        edits = {
            c.number: CriterionFields(
                form.get(f"ac-{c.number}-given", c.given),
                form.get(f"ac-{c.number}-when", c.when),
                form.get(f"ac-{c.number}-then", c.then),
            )
            for c in story.criteria
        }

        async def edit(db: Any) -> Story:
            fresh = await load_story(db, story.org_id, story.id)
            return await update_story(
                db,
                story=fresh,
                fields=story_fields(form, first_new),
                edits=edits,
                actor=user,
                role=role,
            )

        try:
            await get_db().write(edit)
        except Invalid as error:
            return await render_template(
                "stories/form.html",
                sprint=None,
                story=story,
                form=form,
                error=error,
                first_new=first_new,
            ), 422
        await flash(f"Saved the story “{story.title}”.", "success")
        return redirect(_board_or_story(org, story)), 303
    return await render_template(
        "stories/form.html", sprint=None, story=story, form=form, error=None, first_new=first_new
    )


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


__all__ = ["bp", "select"]
