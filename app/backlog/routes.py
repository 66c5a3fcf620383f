"""The backlog page, and moving a story between it and the sprints (owners), from the
backlog and from a board. Thin: the rules are in app.tasks.cycle."""

from __future__ import annotations

from typing import Any

from quart import flash, g, redirect, render_template, request, url_for
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.guards import org_member_required
from app.backlog import bp
from app.db import get_db
from app.errors import Refusal
from app.events.log import last_event_id
from app.inputs import row_id
from app.models import Role, Sprint, Story
from app.tasks.cycle import load_backlog
from app.tasks.cycle import move_story as move
from app.tasks.sprints import sprints_open_for_work
from app.web import change_as_member, is_htmx, live_page, local_referrer


@bp.get("/o/<org>/backlog")
@org_member_required
async def page(org: str) -> Any:
    """The stories in no sprint, in order, each with its tasks; live."""
    async with get_db().read() as db:
        cursor = await last_event_id(db, g.org.id)  # first: see the board
        stories = await load_backlog(db, g.org.id)
        targets = await sprints_open_for_work(db, g.org.id)
    return await render_template(
        "backlog/page.html", stories=stories, targets=targets, **live_page(cursor, None)
    )


@bp.post("/o/<org>/stories/<int:story_id>/move")
@org_member_required
async def move_story(org: str, story_id: int) -> Any:
    """Move a story into a planning or active sprint (`sprint_id`), or to the backlog
    (empty); `before` (a story id) sets its place there."""
    form = await request.form
    raw_sprint = (form.get("sprint_id") or "").strip()
    to_sprint = row_id(raw_sprint) if raw_sprint else None
    before = row_id(form.get("before") or "")
    back = local_referrer(f"/o/{org}/") or url_for("backlog.page", org=org)
    if raw_sprint and to_sprint is None:
        return await _said(f"“{raw_sprint[:40]}” is not a sprint.", "error", back, 422)
    org_id, actor = g.org.id, g.user

    async def moving(db: AsyncSession, role: Role) -> tuple[Story, str]:
        story = await move(
            db,
            org_id=org_id,
            story_id=story_id,
            to_sprint_id=to_sprint,
            before=before,
            actor=actor,
            role=role,
        )
        # The move locked (so loaded) the sprint: this read is the session's own copy.
        target = await db.get(Sprint, to_sprint) if to_sprint is not None else None
        return story, f"“{target.name}”" if target else "the backlog"

    try:
        story, where = await change_as_member(moving)
    except Refusal as refusal:
        return await _said(refusal.message, "error", back, refusal.status)
    return await _said(f"“{story.title}” is in {where}.", "success", back, 200)


async def _said(message: str, kind: str, back: str, status: int) -> Any:
    """An htmx request (a drag, a key) gets the sentence as a flash fragment with its
    status; a plain form goes back where it came from with it."""
    if is_htmx():
        html = await render_template("_flash_oob.html", kind=kind, message=message)
        return html, status
    await flash(message, kind)
    return redirect(back), 303
