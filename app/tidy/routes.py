"""The routes of keeping the board tidy. Thin: the rules are in app.tasks.tidying, the
life cycle's (free) in app.tasks.lifecycle, My work in app.tasks.mine.

Every change is a plain form that answers with a redirect and a flash sentence, the
same with JavaScript or without; an archive's sentence carries the form that undoes it.
A refusal answers with its own status (403, 404, 409, 422) and its sentence, with a
way back to the page the person came from.
"""

from __future__ import annotations

from typing import Any

from quart import flash, g, redirect, render_template, request, url_for
from sqlalchemy import select

from app.auth.guards import org_member_required
from app.db import get_db, utcnow
from app.errors import Invalid, Refusal
from app.events.log import last_event_id
from app.inputs import row_id
from app.models import Sprint
from app.tasks import tidying
from app.tasks.lifecycle import Action, change_task
from app.tasks.mine import load_my_work
from app.tidy import bp
from app.web import live_page, local_referrer


async def _done(message: str, back: str, *, undo: str | None = None) -> Any:
    """Back where the person was, with the sentence (and, after an archive, the form
    that restores it: `undo`, its action)."""
    if undo is None:
        await flash(message, "success")
    else:
        # (The session stores any JSON value; Quart's annotation says str.)
        await flash({"text": message, "undo": undo}, "undo")  # type: ignore[arg-type]
    return redirect(back), 303


async def _refused(refusal: Refusal, back: str) -> Any:
    html = await render_template(
        "errors/error.html", status=refusal.status, message=refusal.message, back=back
    )
    return html, refusal.status


async def _change(change: Any, **ids: int) -> Any:
    """One of app.tasks.tidying's changes, as the signed-in person in this organization."""
    user, org_id = g.user, g.org.id
    return await get_db().write(
        lambda db: tidying.as_member(db, change, actor=user, org_id=org_id, **ids)
    )


def _back(fallback: str) -> str:
    return local_referrer(f"/o/{g.org.slug}/") or fallback


def _board_or_backlog(sprint_id: int | None) -> str:
    if sprint_id is None:
        return url_for("backlog.page", org=g.org.slug)
    return url_for("board.board", org=g.org.slug, sprint_id=sprint_id)


# ---------------------------------------------------------------- a task ----------


@bp.post("/o/<org>/tasks/<int:task_id>/move")
@org_member_required
async def move_task(org: str, task_id: int) -> Any:
    """Put a task under another story (`story_id`)."""
    form = await request.form
    raw = (form.get("story_id") or "").strip()
    story_id = row_id(raw)
    page = url_for("stories.task_page", org=org, task_id=task_id)
    if story_id is None:
        said = f"Choose a story to move it to{f' (“{raw[:40]}” is not one)' if raw else ''}."
        return await _refused(Invalid(said, field="story_id"), page)
    try:
        task = await _change(tidying.move_task, task_id=task_id, story_id=story_id)
    except Refusal as refusal:
        return await _refused(refusal, page)
    return await _done(f"{task.short_id} is under “{task.story.title}”.", page)


@bp.post("/o/<org>/tasks/<int:task_id>/archive")
@org_member_required
async def archive_task(org: str, task_id: int) -> Any:
    """Archive a task; the answer holds the form that undoes it."""
    page = url_for("stories.task_page", org=org, task_id=task_id)
    try:
        task = await _change(tidying.archive_task, task_id=task_id)
    except Refusal as refusal:
        return await _refused(refusal, _back(page))
    back = local_referrer(f"/o/{org}/")
    if back is None or back.startswith(page):  # its own page: where it was instead
        back = _board_or_backlog(task.sprint_id)
    undo = url_for("tidy.restore_task", org=org, task_id=task.id)
    return await _done(f"Archived {task.short_id} “{task.title}”.", back, undo=undo)


@bp.post("/o/<org>/tasks/<int:task_id>/restore")
@org_member_required
async def restore_task(org: str, task_id: int) -> Any:
    """Bring an archived task back where it was."""
    back = _back(url_for("tidy.archive", org=org))
    try:
        task = await _change(tidying.restore_task, task_id=task_id)
    except Refusal as refusal:
        return await _refused(refusal, back)
    return await _done(f"Restored {task.short_id} “{task.title}”.", back)


@bp.post("/o/<org>/tasks/<int:task_id>/free")
@org_member_required
async def free_task(org: str, task_id: int) -> Any:
    """An organization owner frees a task someone else holds (`reason`, required)."""
    form = await request.form
    reason = form.get("reason")
    user, org_id = g.user, g.org.id
    page = url_for("stories.task_page", org=org, task_id=task_id)
    try:
        change = await get_db().write(
            lambda db: change_task(
                db, actor=user, org=org_id, task_id=task_id, action=Action.FREE, reason=reason
            )
        )
    except Refusal as refusal:
        return await _refused(refusal, page)
    return await _done(
        f"Freed {change.task.short_id} “{change.task.title}”; its holder is told why.", page
    )


# ---------------------------------------------------------------- a story ---------


@bp.post("/o/<org>/stories/<int:story_id>/archive")
@org_member_required
async def archive_story(org: str, story_id: int) -> Any:
    """Archive a story with its tasks (owners); the answer holds the undo."""
    back = _back(url_for("backlog.page", org=org))
    try:
        story = await _change(tidying.archive_story, story_id=story_id)
    except Refusal as refusal:
        return await _refused(refusal, back)
    if "/stories/" in back:  # its edit page: where it was instead
        back = _board_or_backlog(story.sprint_id)
    undo = url_for("tidy.restore_story", org=org, story_id=story.id)
    return await _done(f"Archived the story “{story.title}” with its tasks.", back, undo=undo)


@bp.post("/o/<org>/stories/<int:story_id>/restore")
@org_member_required
async def restore_story(org: str, story_id: int) -> Any:
    """Bring back an archived story with the tasks archived with it (owners)."""
    back = _back(url_for("tidy.archive", org=org))
    try:
        story = await _change(tidying.restore_story, story_id=story_id)
    except Refusal as refusal:
        return await _refused(refusal, back)
    return await _done(f"Restored the story “{story.title}”.", back)


# ---------------------------------------------------------------- pages -----------


@bp.get("/o/<org>/archive")
@org_member_required
async def archive(org: str) -> Any:
    """Archived stories and tasks, newest first, each with Restore."""
    async with get_db().read() as db:
        lines = await tidying.load_archive(db, g.org.id)
        sprint_ids = {t.sprint_id for line in lines for t in (line.task, *line.tasks) if t}
        sprint_ids |= {line.story.sprint_id for line in lines if line.story}
        names = {
            s.id: s
            for s in await db.scalars(
                select(Sprint).where(Sprint.org_id == g.org.id, Sprint.id.in_(sprint_ids - {None}))
            )
        }
    return await render_template("tidy/archive.html", lines=lines, sprints=names)


@bp.get("/o/<org>/mine")
@org_member_required
async def mine(org: str) -> Any:
    """My work: what I hold across the organization's sprints, and what I finished in
    the last days; live."""
    async with get_db().read() as db:
        cursor = await last_event_id(db, g.org.id)  # first: see the board
        work = await load_my_work(db, g.org.id, g.user.id, utcnow())
    return await render_template("tidy/mine.html", work=work, **live_page(cursor, None))
