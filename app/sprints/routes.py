"""The sprints page and what owners do there: plan a sprint, move one on, and say
where the organization's days begin and end. Thin: the rules are in app.tasks.sprints."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from quart import flash, g, redirect, render_template, request, url_for
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.accounts import set_time_zone
from app.auth.guards import org_member_required
from app.db import get_db
from app.errors import Conflict, Invalid, Refusal
from app.models import Role, SprintStatus, Story
from app.sprints import bp
from app.tasks.burndown import load_charts
from app.tasks.sprints import SprintFields, advance_sprint, plan_sprint, sprints_newest_first
from app.timefmt import time_zones
from app.web import change_as_member

T = TypeVar("T")


@bp.get("/o/<org>/sprints")
@org_member_required
async def page(org: str) -> Any:
    """List the organization's sprints; owners create and advance them here."""
    async with get_db().read() as db:
        rows = list(await db.scalars(sprints_newest_first(g.org.id)))
        counted = await db.execute(
            select(Story.sprint_id, func.count(Story.id))
            .where(Story.org_id == g.org.id)
            .group_by(Story.sprint_id)
        )
        story_counts = {sprint_id: n for sprint_id, n in counted}
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


@bp.post("/o/<org>/sprints")
@org_member_required
async def create_sprint(org: str) -> Any:
    """Plan a new sprint (owners)."""
    form = await request.form
    fields = SprintFields(
        name=form.get("name", ""),
        goal=form.get("goal", ""),
        start_date=form.get("start_date", ""),
        end_date=form.get("end_date", ""),
    )
    org_id = g.org.id
    return await owner_change_then_back(
        org,
        lambda db, role: plan_sprint(db, org_id=org_id, fields=fields, role=role),
        lambda sprint: f"Sprint “{sprint.name}” is planned.",
    )


@bp.post("/o/<org>/sprints/<int:sprint_id>/advance", endpoint="advance_sprint")
@org_member_required
async def advance(org: str, sprint_id: int) -> Any:
    """Move a sprint one step on: planning → active → review → completed (owners)."""
    org_id = g.org.id
    return await owner_change_then_back(
        org,
        lambda db, role: advance_sprint(db, org_id=org_id, sprint_id=sprint_id, role=role),
        lambda sprint: f"“{sprint.name}” is now {sprint.status}.",
        refused=Conflict,
    )
