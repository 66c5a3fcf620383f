"""Closing a sprint and looking back: the completion page (where does unfinished work
go?), the sprint report and the velocity figure. Thin: the rules are in
app.tasks.cycle and app.tasks.report."""

from __future__ import annotations

from typing import Any

from quart import flash, g, redirect, render_template, request, url_for
from sqlalchemy import select

from app.auth.guards import org_member_required, require_role
from app.db import get_db
from app.errors import Conflict, Refusal
from app.inputs import whole_number
from app.models import Role, Task
from app.sprints import bp
from app.tasks.board import load_sprint
from app.tasks.cycle import BACKLOG, complete_sprint, next_name, unfinished_tasks
from app.tasks.report import load_report, load_velocity
from app.tasks.sprints import sprints_open_for_work
from app.web import change_as_member

VELOCITY_SPRINTS = 6


@bp.route("/o/<org>/sprints/<int:sprint_id>/complete", methods=["GET", "POST"])
@org_member_required
async def complete(org: str, sprint_id: int) -> Any:
    """Ask where a sprint's unfinished tasks go, listing them; then complete it (owners)."""
    require_role(Role.OWNER)
    error: Refusal | None = None
    chosen = ""
    if request.method == "POST":
        chosen = (await request.form).get("carry_to", "")
        org_id, actor, time_zone = g.org.id, g.user, g.org.time_zone
        try:
            done = await change_as_member(
                lambda db, role: complete_sprint(
                    db,
                    org_id=org_id,
                    sprint_id=sprint_id,
                    carry_to=chosen,
                    actor=actor,
                    role=role,
                    time_zone=time_zone,
                )
            )
        except Refusal as refusal:
            error = refusal
        else:
            where = f"“{done.carried_to.name}”" if done.carried_to else "the backlog"
            moved = len(done.carried)
            if moved:
                tasks = "1 unfinished task" if moved == 1 else f"{moved} unfinished tasks"
                await flash(
                    f"“{done.sprint.name}” is completed; {tasks} went on to {where}.", "success"
                )
            else:
                await flash(f"“{done.sprint.name}” is completed, with every task done.", "success")
            return redirect(url_for("sprints.report", org=org, sprint_id=sprint_id)), 303
    async with get_db().read() as db:
        sprint = await load_sprint(db, g.org.id, sprint_id)
        unfinished = await unfinished_tasks(db, sprint)
        targets = [s for s in await sprints_open_for_work(db, g.org.id) if s.id != sprint.id]
    if error is None and not sprint.completes:
        error = Conflict(
            f"“{sprint.name}” is {sprint.status}; a sprint is completed from review."
            if not sprint.closed
            else f"“{sprint.name}” is already completed."
        )
    html = await render_template(
        "sprints/complete.html",
        sprint=sprint,
        unfinished=unfinished,
        targets=targets,
        chosen=chosen or (str(targets[0].id) if targets else "new") if unfinished else BACKLOG,
        new_name=next_name(sprint.name),
        form_error=error,
        BACKLOG=BACKLOG,
    )
    return html, (error.status if error else 200)


@bp.get("/o/<org>/sprints/<int:sprint_id>/report")
@org_member_required
async def report(org: str, sprint_id: int) -> Any:
    """The sprint report: frozen once completed, "so far" before."""
    async with get_db().read() as db:
        sprint = await load_sprint(db, g.org.id, sprint_id)
        figures = await load_report(db, sprint, g.org.time_zone)
        ids = {t for figure in figures.figures().values() for t in figure.tasks}
        tasks = {
            t.id: t
            for t in await db.scalars(select(Task).where(Task.org_id == g.org.id, Task.id.in_(ids)))
        }
    return await render_template("sprints/report.html", sprint=sprint, report=figures, tasks=tasks)


@bp.get("/o/<org>/velocity")
@org_member_required
async def velocity(org: str) -> Any:
    """Committed against completed work of the last completed sprints."""
    last = whole_number(request.args.get("last", "")) or VELOCITY_SPRINTS
    async with get_db().read() as db:
        figure = await load_velocity(db, g.org.id, min(last, 24))
    return await render_template("sprints/velocity.html", velocity=figure)
