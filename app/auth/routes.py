"""Sign-in and sign-out: OpenID Connect, or development sign-in; and the front door."""

from __future__ import annotations

from typing import Any

from quart import current_app, flash, g, redirect, render_template, request, session, url_for
from sqlalchemy import select

from app.auth import bp, sessions
from app.auth.accounts import DEV_ISSUER, find_user_by_email, sign_in_user
from app.auth.guards import current_user, default_membership, login_redirect
from app.auth.oidc import OIDCClient, SignInRefused, remember_pending
from app.db import get_db
from app.errors import Invalid
from app.inputs import safe_next
from app.models import Invitation, Membership, Sprint, SprintStatus, User


def oidc() -> OIDCClient | None:
    return current_app.extensions.get("oidc")


@bp.get("/")
async def home() -> Any:
    """Go to the active sprint of my first organization."""
    if current_user() is None:
        return await login_redirect()
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
        return redirect(url_for("sprints.page", org=org))
    return redirect(url_for("board.board", org=org, sprint_id=sprint_id))


@bp.get("/login")
async def login() -> Any:
    """Go to the identity provider, or show the development sign-in form."""
    nxt = safe_next(request.args.get("next"))
    provider = oidc()
    if provider is not None:
        try:
            url, pending = await provider.start()
        except Exception:  # the provider is down or misconfigured: say so, plainly
            current_app.logger.exception("cannot reach the identity provider")
            return await render_template(
                "auth/refused.html",
                message="The identity provider cannot be reached right now. Try again soon.",
            ), 503
        store = dict(session.get("oidc") or {})
        remember_pending(store, pending, nxt)
        session["oidc"] = store
        return redirect(url)
    if current_app.config["SETTINGS"].dev_login_enabled:
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
        return await render_template("auth/login.html", people=people, next=nxt)
    return await render_template("auth/login_unavailable.html"), 503


@bp.get("/auth/callback")
async def callback() -> Any:
    """Finish an OpenID Connect sign-in; anything that does not check out is refused."""
    provider = oidc()
    if provider is None:
        return await render_template(
            "errors/error.html", status=404, message="There is nothing here."
        ), 404
    store = dict(session.get("oidc") or {})
    pending = store.pop(request.args.get("state", ""), None)
    session["oidc"] = store  # each state works once: a replayed callback finds nothing
    try:
        if pending is None:
            raise SignInRefused(
                "This sign-in link has expired or was already used. Please sign in again."
            )
        if request.args.get("error"):
            raise SignInRefused("The identity provider did not sign you in.")
        code = request.args.get("code")
        if not code:
            raise SignInRefused("The identity provider sent no authorization code.")
        identity = await provider.finish(code, pending)
    except SignInRefused as refused:
        return await render_template("auth/refused.html", message=refused.message), 400

    async def sign_in(db: Any) -> tuple[User, str]:
        user = await sign_in_user(
            db,
            issuer=identity.issuer,
            subject=identity.subject,
            email=identity.email,
            name=identity.name,
        )
        return user, await sessions.begin(db, user, id_token=identity.id_token)

    _user, key = await get_db().write(sign_in)
    sessions.remember(key)
    return redirect(safe_next(pending.get("next"))), 303


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
    nxt = safe_next(form.get("next"))

    async def sign_in(db: Any) -> str | None:
        user = await find_user_by_email(db, email) if email else None
        if user is None:
            invited = await db.scalar(select(Invitation.id).where(Invitation.email == email))
            if not invited:
                return None
            # Someone invited with `org create` or `member add` signs in for the first time.
            user = await sign_in_user(
                db, issuer=DEV_ISSUER, subject=email, email=email, name=email.split("@")[0].title()
            )
        return await sessions.begin(db, user)

    try:
        key = await get_db().write(sign_in)
    except Invalid:
        key = None
    if key is None:
        await flash(f"No one with the email “{email}” has been invited here.", "error")
        return redirect(url_for("auth.login", next=nxt)), 303
    sessions.remember(key)
    return redirect(nxt), 303


@bp.post("/logout")
async def logout() -> Any:
    """Sign out of this browser: the session ends on the server, its streams close."""
    key = session.get("sid")
    # Ending it logs the change: every instance forgets it and closes its streams.
    ended = await get_db().write(lambda db: sessions.end(db, str(key))) if key else None
    session.clear()
    g.user = None
    provider = oidc()
    after = f"{current_app.config['SETTINGS'].base_url}/login?signed_out=1"
    if provider is not None:
        url = await provider.logout_url(ended.id_token if ended else None, after)
        if url:
            return redirect(url), 303
    await flash("You are signed out.", "info")
    return redirect(url_for("auth.login")), 303


@bp.post("/logout/everywhere")
async def logout_everywhere() -> Any:
    """Sign out of every browser and close every live stream of mine."""
    user = current_user()
    if user is not None:
        await get_db().write(lambda db: sessions.end_all(db, user.id))
    session.clear()
    await flash("You are signed out everywhere.", "info")
    return redirect(url_for("auth.login")), 303
