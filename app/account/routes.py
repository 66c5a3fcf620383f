"""Account routes: my personal API tokens. Thin; the rules are in app.auth.accounts.

A new token is shown once, in the answer to the POST that made it (201, no redirect):
only its hash is stored, so there is nothing to show later.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from quart import flash, g, redirect, render_template, request, url_for
from sqlalchemy.ext.asyncio import AsyncSession

from app.account import bp
from app.auth.accounts import create_token, revoke_token, tokens_of
from app.auth.guards import current_user, login_redirect
from app.db import get_db
from app.errors import Forbidden, Invalid

P = ParamSpec("P")
R = TypeVar("R")

TOKEN_NAME_MAX = 100


def browser_session_required(view: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[Any]]:
    """Signed-out visitors go to sign-in; a bearer token may not manage tokens."""

    @functools.wraps(view)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
        if current_user() is None:
            return await login_redirect()
        if g.get("via_token"):
            # A leaked token must not be able to mint or revoke tokens.
            raise Forbidden("Manage API tokens from a signed-in browser.")
        return await view(*args, **kwargs)

    return wrapper


@bp.get("/settings/tokens")
@browser_session_required
async def tokens() -> Any:
    """List my API tokens, with a form to create one and a way to revoke each."""
    return await render_tokens()


async def render_tokens(
    *, new_token: str | None = None, error: Invalid | None = None, status: int = 200
) -> Any:
    async with get_db().read() as db:
        rows = await tokens_of(db, g.user.id)
    html = await render_template(
        "account/tokens.html", tokens=rows, new_token=new_token, error=error
    )
    return html, status


@bp.post("/settings/tokens")
@browser_session_required
async def create() -> Any:
    """Make a new API token and show it this once."""
    form = await request.form
    try:
        name = clean_token_name(form.get("name"))
    except Invalid as error:
        return await render_tokens(error=error, status=error.status)
    user = g.user
    token = await get_db().write(lambda db: create_token(db, user=user, name=name))
    return await render_tokens(new_token=token, status=201)


@bp.post("/settings/tokens/<int:token_id>/revoke")
@browser_session_required
async def revoke(token_id: int) -> Any:
    """Revoke one of my tokens: it stops working at once and its streams close."""
    user_id = g.user.id

    async def run(db: AsyncSession) -> str:
        row = await revoke_token(db, user_id=user_id, token_id=token_id)
        return row.name or row.prefix

    name = await get_db().write(run)  # its streams close with the commit (a logged change)
    await flash(f"The token “{name}” is revoked.", "success")
    return redirect(url_for("account.tokens")), 303


def clean_token_name(value: str | None) -> str:
    name = (value or "").strip()
    if not name:
        raise Invalid("Give the token a name, so you know later what uses it.", field="name")
    if len(name) > TOKEN_NAME_MAX:
        raise Invalid(f"A token name has at most {TOKEN_NAME_MAX} characters.", field="name")
    return name
