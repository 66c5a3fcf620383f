"""The board and the actions on its cards: thin; the rules are in app.tasks and the
shaping in app.tasks.board (the sprints page is app/sprints)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from quart import flash, g, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from app.auth.guards import org_member_required
from app.board import bp
from app.db import get_db
from app.errors import NotFound, Refusal
from app.events.log import last_event_id, task_history
from app.inputs import row_id
from app.models import Task
from app.tasks.board import BoardQuery, BoardView, load_view
from app.tasks.lifecycle import Action, Change, change_task, load_task
from app.web import is_htmx, live_page, local_referrer


def query_from_args(args: Any) -> BoardQuery:
    return BoardQuery.parse(
        args.get("group"), args.getlist("status"), args.get("mine"), args.get("available")
    )


@bp.get("/o/<org>/sprints/<int:sprint_id>")
@org_member_required
async def board(org: str, sprint_id: int) -> Any:
    """Show one sprint's board, grouped and filtered as the query string says."""
    return await render_board(sprint_id, query_from_args(request.args))


async def render_board(sprint_id: int, query: BoardQuery, *, error: Refusal | None = None) -> Any:
    async with get_db().read() as db:
        # The cursor first: an event committed between the two reads is then replayed to
        # this page (harmlessly, if the view already shows it) instead of skipped.
        cursor = await last_event_id(db, g.org.id)
        view = await load_view(db, g.org, sprint_id, query, g.user.id)
    html = await render_template(
        "board/page.html", view=view, error=error, **live_page(cursor, sprint_id)
    )
    return html, (error.status if error else 200)


@bp.post("/o/<org>/tasks/<int:task_id>/<action>")
@org_member_required
async def act(org: str, task_id: int, action: str) -> Any:
    """Take, start, pause, complete or release a task."""
    try:
        verb = Action(action)
    except ValueError:
        raise NotFound(f"“{action}” is not something a task can do.") from None
    user, org_id = g.user, g.org.id
    try:
        change = await get_db().write(
            lambda db: change_task(db, actor=user, org=org_id, task_id=task_id, action=verb)
        )
    except Refusal as refusal:
        return await answer_refusal(refusal, task_id)
    if is_htmx():
        return await render_after_change(change.task.id, message=change.message)
    await flash(change.message, "success")
    return redirect(await back_to(change)), 303


@bp.get("/o/<org>/tasks/<int:task_id>/release")
@org_member_required
async def confirm_release(org: str, task_id: int) -> Any:
    """Ask before giving up a task (the path taken without JavaScript)."""
    async with get_db().read() as db:
        task = await load_task(db, g.org.id, task_id)
    if task.sprint_id:
        fallback = url_for("board.board", org=org, sprint_id=task.sprint_id)
    else:
        fallback = url_for("stories.task_page", org=org, task_id=task.id)
    back = local_referrer(f"/o/{org}/") or fallback
    return await render_template("tasks/confirm_release.html", task=task, back=back)


async def back_to(change: Change) -> str:
    """Where a plain form post returns: the page it came from, or the task's board."""
    task = change.task
    org = g.org.slug
    back = local_referrer(f"/o/{org}/")
    if back and not urlsplit(back).path.endswith("/release"):  # (not the question again)
        return back
    if task.sprint_id:
        return url_for("board.board", org=org, sprint_id=task.sprint_id)
    return url_for("stories.task_page", org=org, task_id=task.id)


def board_context() -> tuple[int, BoardQuery] | None:
    """The board (sprint id and view) the request came from, if it came from one."""
    ref = local_referrer(f"/o/{g.org.slug}/sprints/")
    if not ref:
        return None
    parts = urlsplit(ref)
    sprint_id = row_id(parts.path.rsplit("/", 1)[-1])
    if sprint_id is None:
        return None
    return sprint_id, query_from_args(MultiDict(parse_qsl(parts.query)))


async def render_after_change(
    task_id: int, *, message: str = "", error: Refusal | None = None, status: int = 200
) -> Any:
    """The htmx answer: fresh copies of everything the change touched, swapped out of band.

    On a board that is the header, the filter counts and the groups the task left and
    joined; elsewhere the task's card (and, on the task's page, its history; My work
    follows its own change from the stream).
    """
    context = board_context()
    async with get_db().read() as db:
        task = await db.scalar(select(Task).where(Task.id == task_id, Task.org_id == g.org.id))
        view: BoardView | None = None
        if context is not None:
            sprint_id, query = context
            try:
                view = await load_view(db, g.org, sprint_id, query, g.user.id)
            except NotFound:
                view = None
        history = None
        on_task_page = local_referrer(f"/o/{g.org.slug}/tasks/") is not None
        if view is None and task is not None and on_task_page:
            history = await task_history(db, g.org.id, task.id)
    touched: list[str] = []
    if view is not None and task is not None:
        touched = [view.group_for(task)]
        if view.query.group == "status":
            touched = [g_.key for g_ in view.groups]  # the card may have left any of them
    html = await render_template(
        "board/_after_change.html",
        view=view,
        task=task,
        touched=touched,
        history=history,
        message=message,
        error=error,
    )
    return html, status


async def answer_refusal(refusal: Refusal, task_id: int) -> Any:
    """Say why nothing changed, on the page the person is looking at."""
    if is_htmx():
        return await render_after_change(task_id, error=refusal, status=refusal.status)
    context = board_context()
    if context is not None and not isinstance(refusal, NotFound):
        return await render_board(context[0], context[1], error=refusal)
    return (
        await render_template("errors/error.html", status=refusal.status, message=refusal.message),
        refusal.status,
    )
