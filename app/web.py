"""Helpers shared by the HTML blueprints and templates."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from quart import Quart, g, request
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.accounts import member_access
from app.auth.csrf import csrf_token
from app.db import get_db
from app.events.types import EventType
from app.live import presence
from app.live.presence import Seen
from app.live.streams import RESET, live_updates
from app.models import Role, Story, Task, TaskStatus
from app.outages import cause_of
from app.tasks.burndown import plot
from app.tasks.lifecycle import RULES, Action, actions_from
from app.timefmt import ago, iso


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def dom_id(obj: object) -> str:
    """The one id an object's element carries in every page, answer and broadcast."""
    if isinstance(obj, Task):
        return f"task-{obj.id}"
    if isinstance(obj, Story):
        return f"story-{obj.id}"
    raise TypeError(f"no dom id for {type(obj).__name__}")


# Set by app.js on every page: this browser runs our script, so pages full of cards can
# leave each card's buttons to it (see tasks/_card.html). A page shaped so and opened
# with scripting off goes to `board.no_script`, which forgets it.
SCRIPT_COOKIE = "sprintboard_js"


def scripted() -> bool:
    """Does this browser run our script (as far as its last page said)?"""
    return request.cookies.get(SCRIPT_COOKIE) == "1"


def local_referrer(prefix: str) -> str | None:
    """The page the request came from, if it is one of ours under `prefix`."""
    ref = request.headers.get("HX-Current-URL") or request.headers.get("Referer")
    if not ref:
        return None
    parts = urlsplit(ref)
    if parts.netloc and parts.netloc != request.host:
        return None
    if not parts.path.startswith(prefix):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


T = TypeVar("T")


async def change_as_member(work: Callable[[AsyncSession, Role], Awaitable[T]]) -> T:
    """Run `work(db, role)` as one write, with the role the signed-in person has in this
    page's organization there and then: a role changed a moment ago is the one that
    counts, whatever the page was rendered with."""
    user, org_id = g.user, g.org.id

    async def write(db: AsyncSession) -> T:
        access = await member_access(db, user.id, org_id)
        return await work(db, access.role)

    return await get_db().write(write)


def live_page(cursor: int, sprint_id: int | None) -> dict[str, Any]:
    """What a page that follows the live stream (the board, a task's page) is rendered
    with: the event id it shows, the transport asked for, the events it listens to, and
    who else is looking at its sprint now (the people named, their number, and by task)."""
    others: list[Seen] = []
    if sprint_id is not None:
        everyone = live_updates().presence.viewers((g.org.id, sprint_id))
        others = [seen for seen in everyone if seen.user_id != g.user.id]
    viewing: dict[int, list[Seen]] = {}
    for seen in others:
        if seen.task_id is not None:
            viewing.setdefault(seen.task_id, []).append(seen)
    return {
        "event_id": cursor,
        "transport": "ws" if request.args.get("transport") == "ws" else "sse",
        "live_event_types": ",".join((*EventType, RESET, presence.EVENT)),
        "presence_listed": presence.listed(others),
        "presence_total": len(others),
        "viewing": viewing,
    }


def install_template_helpers(app: Quart) -> None:
    app.jinja_env.globals.update(
        csrf_token=csrf_token,
        dom_id=dom_id,
        actions_from=actions_from,
        RULES=RULES,
        Action=Action,
        TaskStatus=TaskStatus,
        EventType=EventType,
        Role=Role,
        plot=plot,
    )
    app.jinja_env.filters.update(ago=ago, iso=iso)

    @app.context_processor
    async def organization_context() -> dict[str, Any]:
        """`org` for templates; a broadcast passes its own (explicit values win)."""
        return {"org": g.get("org")}

    @app.context_processor
    async def memberships_context() -> dict[str, Any]:
        """The organizations the signed-in person can switch between (full pages only)."""
        from app.auth.accounts import memberships_of

        user = g.get("user")
        if user is None or is_htmx() or g.get("outage"):  # (the page saying so: no reads)
            return {"memberships": []}
        try:
            async with get_db().read() as db:
                return {"memberships": list(await memberships_of(db, user.id))}
        except Exception as error:
            if cause_of(error) is None:
                raise
            return {"memberships": []}  # the page saying "saving is paused" still shows

    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
