"""The board and the actions on its cards: thin; the rules are in app.tasks and the
shaping in app.tasks.board (the sprints page is app/sprints)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from markupsafe import Markup
from quart import flash, g, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from app.auth.csrf import csrf_token
from app.auth.guards import org_member_required
from app.board import bp
from app.db import get_db
from app.errors import NotFound, Refusal
from app.events.log import last_event_id, task_history
from app.inputs import row_id, safe_next
from app.live.cards import for_broadcast, for_page
from app.live.render import moves_header
from app.live.streams import live_updates
from app.models import Sprint, Task
from app.tasks.board import BoardQuery, load_view
from app.tasks.lifecycle import Action, Change, change_task, load_task
from app.tasks.sprints import load_summary
from app.timefmt import local_today
from app.web import SCRIPT_COOKIE, is_htmx, live_page, local_referrer, scripted


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
    live = live_page(cursor, sprint_id)
    lean = scripted()
    cards = await live_updates().renderer.cards.render(
        [task for group in view.groups for task in group.tasks],
        org=g.org,
        closed=view.sprint.closed,
        scripted=lean,
        viewing=live["viewing"],
    )
    html = await render_template(
        "board/page.html", view=view, cards=cards, error=error, scripted_page=lean, **live
    )
    return for_page(html, csrf_token()), (error.status if error else 200)


@bp.get("/no-script")
async def no_script() -> Any:
    """A page shaped for a browser running our script was opened with scripting off:
    forget that it runs, and show the page again with every card's buttons in it."""
    response = redirect(safe_next(request.args.get("next")), 303)
    response.delete_cookie(SCRIPT_COOKIE)
    return response


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
        return await render_after_change(
            change.task.id, message=change.message, moved_header=moves_header(change.event)
        )
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
    task_id: int,
    *,
    message: str = "",
    error: Refusal | None = None,
    status: int = 200,
    moved_header: bool = False,
) -> Any:
    """The htmx answer: what the change touched, and no more.

    On a board that is the task's card (placed by the page's script, as a teammate's
    change is: where it goes depends on the page's grouping and filters), the sprint's
    counts, and the header when the change `moved_header`; never whole groups. Elsewhere
    the task's card, swapped out of band (and, on the task's page, its history; My work
    follows its own change from the stream).
    """
    context = board_context()
    summary = None
    async with get_db().read() as db:
        task = await db.scalar(select(Task).where(Task.id == task_id, Task.org_id == g.org.id))
        on_board = context is not None and task is not None
        sprint = None
        if on_board and task is not None and task.sprint_id is not None:
            sprint = await db.get(Sprint, task.sprint_id)
        if sprint is not None and context is not None and sprint.id == context[0]:
            summary = await load_summary(db, sprint, local_today(g.org.time_zone))
            if moved_header:
                await summary.chart(db, g.org.time_zone)
        history = None
        on_task_page = local_referrer(f"/o/{g.org.slug}/tasks/") is not None
        if context is None and task is not None and on_task_page:
            history = await task_history(db, g.org.id, task.id)
    card = None
    if on_board and task is not None:
        # (A task that left this board's sprint meanwhile comes too: the page drops it.)
        closed = sprint.closed if sprint is not None else False
        cards = await live_updates().renderer.cards.render([task], org=g.org, closed=closed)
        card = Markup(for_broadcast(cards[task.id]))
    html = await render_template(
        "board/_after_change.html",
        card=card,
        summary=summary,
        header=summary if moved_header else None,
        task=task,
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
