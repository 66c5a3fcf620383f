"""The sprints page and what owners do there: plan a sprint, move one on, and say
where the organization's days begin and end. Thin: the rules are in app.tasks.sprints."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from quart import flash, g, redirect, render_template, request, url_for
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.accounts import set_time_zone
from app.auth.guards import org_member_required, require_role
from app.db import get_db
from app.errors import Conflict, Invalid, Refusal
from app.models import Role, SprintStatus
from app.sprints import bp
from app.tasks.board import load_sprint
from app.tasks.burndown import load_charts
from app.tasks.cycle import count_stories, delete_sprint, edit_sprint
from app.tasks.sprints import (
    SprintFields,
    StartsLater,
    advance_sprint,
    plan_sprint,
    sprints_newest_first,
)
from app.timefmt import local_today, time_zones
from app.web import change_as_member

T = TypeVar("T")


@bp.get("/o/<org>/sprints")
@org_member_required
async def page(org: str) -> Any:
    """List the organization's sprints; owners create and advance them here."""
    async with get_db().read() as db:
        rows = list(await db.scalars(sprints_newest_first(g.org.id)))
        story_counts = await count_stories(db, [s.id for s in rows])
        charts = await load_charts(db, g.org.id, rows, g.org.time_zone)
    return await render_template(
        "sprints/page.html",
        sprints=rows,
        story_counts=story_counts,
        charts=charts,
        time_zones=time_zones(),
        SprintStatus=SprintStatus,
    )


async def owner_change_then_back(
    org: str,
    work: Callable[[AsyncSession, Role], Awaitable[T]],
    said: Callable[[T], str],
    *,
    refused: type[Refusal] = Invalid,
) -> Any:
    """An owner's change made from the sprints page, then back to it with a sentence on
    what happened, or on why not (a refusal of the kind the form expects)."""
    try:
        done = await change_as_member(work)
    except refused as refusal:
        await flash(refusal.message, "error")
    else:
        await flash(said(done), "success")
    return redirect(url_for("sprints.page", org=org)), 303


@bp.post("/o/<org>/time-zone")
@org_member_required
async def change_time_zone(org: str) -> Any:
    """Say where the organization's days begin and end (owners)."""
    name = (await request.form).get("time_zone", "")
    org_id, org_name = g.org.id, g.org.name
    return await owner_change_then_back(
        org,
        lambda db, role: set_time_zone(db, org_id=org_id, name=name, role=role),
        lambda chosen: f"{org_name}'s days now begin and end at midnight in {chosen}.",
    )


def sprint_fields(form: Any) -> SprintFields:
    """A sprint's fields as its form (planning or editing) sends them."""
    return SprintFields(
        name=form.get("name", ""),
        goal=form.get("goal", ""),
        start_date=form.get("start_date", ""),
        end_date=form.get("end_date", ""),
    )


@bp.post("/o/<org>/sprints")
@org_member_required
async def create_sprint(org: str) -> Any:
    """Plan a new sprint (owners)."""
    form = await request.form
    fields = sprint_fields(form)
    org_id = g.org.id
    return await owner_change_then_back(
        org,
        lambda db, role: plan_sprint(db, org_id=org_id, fields=fields, role=role),
        lambda sprint: f"Sprint “{sprint.name}” is planned.",
    )


@bp.post("/o/<org>/sprints/<int:sprint_id>/advance", endpoint="advance_sprint")
@org_member_required
async def advance(org: str, sprint_id: int) -> Any:
    """Move a sprint one step on: planning → active → review (owners). A sprint in
    review goes to its completion page; one whose start date is ahead asks first
    whether to start it today (`start_today=1` says yes)."""
    async with get_db().read() as db:
        sprint = await load_sprint(db, g.org.id, sprint_id)
    if sprint.status == SprintStatus.REVIEW.value:
        return redirect(url_for("sprints.complete", org=org, sprint_id=sprint_id)), 303
    start_today = (await request.form).get("start_today") == "1"
    org_id, actor, today = g.org.id, g.user, local_today(g.org.time_zone)
    try:
        moved = await change_as_member(
            lambda db, role: advance_sprint(
                db,
                org_id=org_id,
                sprint_id=sprint_id,
                actor=actor,
                role=role,
                today=today,
                start_today=start_today,
            )
        )
    except StartsLater as question:
        return await render_template("sprints/start_today.html", sprint=sprint, question=question)
    except Conflict as refusal:
        await flash(refusal.message, "error")
    else:
        await flash(f"“{moved.name}” {STATUS_WORDS[moved.status]}.", "success")
    return redirect(url_for("sprints.page", org=org)), 303


# What the flash says a sprint now is, by its new status.
STATUS_WORDS = {
    SprintStatus.ACTIVE.value: "has started",
    SprintStatus.REVIEW.value: "is in review",
    SprintStatus.COMPLETED.value: "is completed",
}


@bp.route("/o/<org>/sprints/<int:sprint_id>/edit", methods=["GET", "POST"])
@org_member_required
async def edit(org: str, sprint_id: int) -> Any:
    """Change a sprint's name, goal and dates (owners; not once completed)."""
    require_role(Role.OWNER)
    async with get_db().read() as db:
        sprint = await load_sprint(db, g.org.id, sprint_id)
    error: Refusal | None = None
    form: Any = {}
    if request.method == "POST":
        form = await request.form
        fields = sprint_fields(form)
        org_id, actor = g.org.id, g.user
        try:
            saved = await change_as_member(
                lambda db, role: edit_sprint(
                    db, org_id=org_id, sprint_id=sprint_id, fields=fields, actor=actor, role=role
                )
            )
        except Refusal as refusal:
            error = refusal
        else:
            await flash(f"Saved “{saved.name}”.", "success")
            return redirect(url_for("sprints.page", org=org)), 303
    if sprint.closed and error is None:
        error = Conflict(f"“{sprint.name}” is completed; its name and dates are a record now.")
    html = await render_template("sprints/edit.html", sprint=sprint, form=form, form_error=error)
    return html, (error.status if error and request.method == "POST" else 200)


@bp.get("/o/<org>/sprints/<int:sprint_id>/delete")
@org_member_required
async def confirm_delete(org: str, sprint_id: int) -> Any:
    """Ask before deleting a planned sprint, saying what happens to its stories."""
    require_role(Role.OWNER)
    async with get_db().read() as db:
        sprint = await load_sprint(db, g.org.id, sprint_id)
        stories = (await count_stories(db, [sprint.id])).get(sprint.id, 0)
    return await render_template("sprints/confirm_delete.html", sprint=sprint, stories=stories)


@bp.post("/o/<org>/sprints/<int:sprint_id>/delete")
@org_member_required
async def delete(org: str, sprint_id: int) -> Any:
    """Delete a sprint still in planning; its stories go to the backlog (owners)."""
    org_id, actor = g.org.id, g.user

    def said(done: tuple[str, int]) -> str:
        name, moved = done
        if not moved:
            return f"Deleted “{name}”."
        stories = "its story" if moved == 1 else f"its {moved} stories"
        return f"Deleted “{name}”; {stories} went to the backlog."

    return await owner_change_then_back(
        org,
        lambda db, role: delete_sprint(
            db, org_id=org_id, sprint_id=sprint_id, actor=actor, role=role
        ),
        said,
        refused=Refusal,
    )
