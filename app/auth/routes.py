"""Sign-in pages: development sign-in, sign-out, and the front door."""

from __future__ import annotations

from typing import Any

from quart import current_app, flash, g, redirect, render_template, request, session, url_for
from sqlalchemy import select

from app.auth import bp
from app.auth.accounts import DEV_ISSUER, find_user_by_email, sign_in_user
from app.auth.guards import current_user, default_membership, get_db, login_redirect
from app.errors import Invalid
from app.models import Invitation, Membership, Sprint, SprintStatus, User


def _safe_next(value: str | None) -> str:
    """Only local paths: never bounce a person to another site after sign-in."""
    if value and value.startswith("/") and not value.startswith("//"):
        return value
    return "/"


@bp.get("/")
async def home() -> Any:
    """Go to the active sprint of my first organization."""
    if current_user() is None:
        return login_redirect()
    membership = await default_membership()
    if membership is None:
        return await render_template("auth/no_org.html"), 200
    async with get_db().read() as db:
        sprint_id = await db.scalar(
            select(Sprint.id).where(
                Sprint.org_id == membership.org_id, Sprint.status == SprintStatus.ACTIVE.value
            )
        )
    org = membership.organization.slug
    if sprint_id is None:
        return redirect(url_for("board.sprints", org=org))
    return redirect(url_for("board.board", org=org, sprint_id=sprint_id))


@bp.get("/login")
async def login() -> Any:
    """Show the development sign-in form (or, later, go to the identity provider)."""
    settings = current_app.config["SETTINGS"]
    if settings.dev_login_enabled:
        async with get_db().read() as db:
            people = (
                await db.execute(
                    select(User.email, User.name)
                    .join(Membership, Membership.user_id == User.id)
                    .where(User.oidc_issuer == DEV_ISSUER)
                    .distinct()
                    .order_by(User.email)
                )
            ).all()
        return await render_template(
            "auth/login.html", people=people, next=_safe_next(request.args.get("next"))
        )
    return await render_template("auth/login_unavailable.html"), 503


@bp.post("/login/dev")
async def login_dev() -> Any:
    """Sign in as a demo user by email (development only, never with OIDC set)."""
    settings = current_app.config["SETTINGS"]
    if not settings.dev_login_enabled:
        return await render_template(
            "errors/error.html", status=404, message="Development sign-in is off."
        ), 404
    form = await request.form
    email = (form.get("email") or "").strip().lower()
    nxt = _safe_next(form.get("next"))

    async def sign_in(db: Any) -> User | None:
        user = await find_user_by_email(db, email) if email else None
        if user is not None:
            return user
        invited = await db.scalar(select(Invitation.id).where(Invitation.email == email))
        if not invited:
            return None
        # Someone invited with `org create` or `member add` signs in for the first time.
        return await sign_in_user(
            db, issuer=DEV_ISSUER, subject=email, email=email, name=email.split("@")[0].title()
        )

    try:
        user = await get_db().write(sign_in)
    except Invalid:
        user = None
    if user is None:
        await flash(f"No one with the email “{email}” has been invited here.", "error")
        return redirect(url_for("auth.login", next=nxt)), 303
    session.clear()
    session["uid"] = user.id
    session["sv"] = user.session_version
    session.permanent = True
    return redirect(nxt), 303


@bp.post("/logout")
async def logout() -> Any:
    """Sign out of this browser."""
    session.clear()
    g.user = None
    await flash("You are signed out.", "info")
    return redirect(url_for("auth.login")), 303
