"""Who is asking, and may they? Identity per request, organization guards, roles.

The organization always comes from the signed-in person's membership: a slug in the
URL that they are not a member of answers 404, exactly like one that does not exist.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar
from urllib.parse import quote, urlsplit

from quart import (
    g,
    has_websocket_context,
    redirect,
    render_template,
    request,
    session,
    websocket,
)
from sqlalchemy import bindparam, or_, select

from app.auth import sessions
from app.auth.accounts import (
    NO_ORGANIZATION,
    NO_SUCH_ORGANIZATION,
    hash_token,
    memberships_of,
    org_id_in,
    require_contributor,
    require_owner,
    token_use,
    touch_token,
)
from app.auth.identities import Identities, Snapshot, current_identities
from app.db import get_db, utcnow
from app.errors import NotFound, Unauthenticated
from app.models import Membership, Organization, Role, User

P = ParamSpec("P")
TOKEN_TOUCH_EVERY = dt.timedelta(minutes=5)
R = TypeVar("R")


def connection() -> Any:
    """The request or the WebSocket being handled."""
    return websocket if has_websocket_context() else request


def bearer_token() -> str | None:
    header = connection().headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


async def load_identity() -> None:
    """Set `g.user` from a bearer token or the session cookie (before every request)."""
    g.user = None
    g.via_token = False
    g.session_id = None
    g.token_id = None
    # What this instance knew of changes when it checked who is asking (see Opening).
    g.identity_generation = identities().generation
    token = bearer_token()
    if token is None and connection().path.startswith("/api/v1/ws"):
        # Browsers cannot set headers on a WebSocket; this route accepts ?token= (never logged).
        token = connection().args.get("token") or None
    if token is not None:
        await identify_by_token(token)
        return
    key = session.get("sid")
    if key is None:
        return

    async def load() -> Known | None:
        async with get_db().read() as db:
            live = await sessions.find(db, str(key))
        return None if live is None else Known(live.id, Snapshot.of(live.user))

    known = await identities().get(("session", sessions.key_hash(str(key))), load)
    if known is None:
        # Signed out (here or elsewhere): this cookie is worth nothing any more.
        session.clear()
        return
    g.user, g.session_id = known.user.revive(), known.id


async def identify_by_token(token: str) -> None:
    async def load() -> Known | None:
        async with get_db().read() as db:
            found = await token_use(db, token)
        if found is None:
            return None
        return Known(found.token_id, Snapshot.of(found.user), found.last_used_at)

    known = await identities().get(("token", hash_token(token)), load)
    if known is None:
        return
    g.user, g.token_id, g.via_token = known.user.revive(), known.id, True
    # "Last used" to the nearest few minutes: not a write on every API call.
    now = utcnow()
    if known.last_used_at is None or now - known.last_used_at > TOKEN_TOUCH_EVERY:
        known.last_used_at = now  # this instance's note, so that it touches it once
        await get_db().write(lambda db: touch_token(db, known.id))


@dataclass
class Known:
    """A live session or token as the cache keeps it: its id and its person."""

    id: int
    user: Snapshot[User]
    last_used_at: dt.datetime | None = None  # tokens: when this instance last touched it


def identities() -> Identities:
    """This instance's cache of who is asking (see app.auth.identities)."""
    return current_identities()


def current_user() -> User | None:
    return g.get("user")


def is_stream_path(path: str) -> bool:
    return path.endswith("/events") or path.endswith("/ws") or path.startswith("/api/v1/ws")


def wants_html() -> bool:
    return not (request.path.startswith("/api/") or is_stream_path(request.path))


async def login_redirect() -> Any:
    """Off to sign in, and back here afterwards. An action sent by a page's script (a
    button, a key or a drag, on a page open since before the session ended) cannot
    follow a redirect to a page: it is told instead, 401, in the page's own words, with
    the link to sign in and back to that page; nothing was changed."""
    if request.headers.get("HX-Request") == "true":
        page = urlsplit(request.headers.get("HX-Current-URL") or "/")
        back = "/"
        if page.netloc in ("", request.host):
            back = page.path + (f"?{page.query}" if page.query else "")
        html = await render_template("auth/_signed_out.html", link=_login_link(back))
        return html, 401, {"HX-Trigger": "sprintboard:signed-out"}
    return redirect(_login_link(request.full_path if request.method == "GET" else "/"))


def _login_link(back: str) -> str:
    return f"/login?next={quote(back.rstrip('?'))}"


# Built once: every page, action and stream of an organization runs it.
_MEMBERSHIP_BY_REF = (
    select(Membership)
    .join(Organization, Organization.id == Membership.org_id)
    .where(
        Membership.user_id == bindparam("user_id"),
        or_(Organization.slug == bindparam("slug"), Organization.id == bindparam("org_id")),
    )
    .limit(1)
)


async def resolve_membership(org_ref: str | None) -> Membership:
    """The signed-in user's membership in `org_ref` (a slug or id), or in their first
    organization when it is None; NotFound when there is none."""
    user = current_user()
    if user is None:
        raise Unauthenticated("Sign in first.")
    user_id = user.id

    async def load() -> Snapshot[Membership] | None:
        async with get_db().read() as db:
            if org_ref:
                params = {"user_id": user_id, "slug": org_ref, "org_id": org_id_in(org_ref)}
                membership = await db.scalar(_MEMBERSHIP_BY_REF, params)
            else:
                membership = next(iter(await memberships_of(db, user_id)), None)
        if membership is None:
            return None
        # The organization's event counter moves with every change: never kept.
        return Snapshot.of(
            membership, related=("organization", "user"), leave_out=("last_event_id",)
        )

    found = await identities().get(("membership", user_id, org_ref or ""), load)
    if found is None:
        raise NotFound(NO_SUCH_ORGANIZATION if org_ref else NO_ORGANIZATION)
    return found.revive()


async def default_membership() -> Membership | None:
    user = current_user()
    if user is None:
        return None
    async with get_db().read() as db:
        rows = await memberships_of(db, user.id)
    return rows[0] if rows else None


def use_membership(membership: Membership) -> None:
    g.membership = membership
    g.org = membership.organization
    g.role = membership.role_enum


def org_member_required(view: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[Any]]:
    """Resolve `<org>` from the URL against the user's memberships; sets g.org and g.role."""

    @functools.wraps(view)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
        if current_user() is None:
            if wants_html():
                return await login_redirect()
            raise Unauthenticated("Sign in first.")
        use_membership(await resolve_membership(str(kwargs["org"])))
        return await view(*args, **kwargs)

    return wrapper


def require_role(role: Role) -> None:
    """Refuse with 403 unless the current membership has at least `role`."""
    (require_owner if role is Role.OWNER else require_contributor)(g.role)
