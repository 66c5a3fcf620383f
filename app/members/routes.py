"""Members routes: thin; the rules are in app.auth.membership.

Every change is the owners' (403 for everyone else). A removal or a role change ends
that person's live streams in this organization; their next request sees the change
anyway, because the guards read memberships on every request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from quart import flash, g, redirect, render_template, request, url_for
from sqlalchemy.ext.asyncio import AsyncSession
from werkzeug.datastructures import MultiDict

from app.auth import membership
from app.auth.accounts import parse_role, require_owner
from app.auth.guards import org_member_required, require_role
from app.db import get_db
from app.errors import Conflict, Invalid, NotFound, Refusal
from app.members import bp
from app.models import Membership, Role, User
from app.web import change_as_member


@bp.get("/o/<org>/members")
@org_member_required
async def members(org: str) -> Any:
    """List the organization's members and open invitations; owners manage them here."""
    return await render_members()


async def render_members(
    *, error: Refusal | None = None, form: MultiDict[str, str] | None = None
) -> Any:
    async with get_db().read() as db:
        people = await membership.members_of(db, g.org.id)
        invitations = await membership.open_invitations(db, g.org.id)
    html = await render_template(
        "members/page.html",
        people=people,
        invitations=invitations,
        roles=list(Role),
        error=error,
        form=form or MultiDict(),
    )
    return html, (error.status if error else 200)


Change = Callable[[AsyncSession], Awaitable[str]]


async def manage(
    change: Change, *, form: MultiDict[str, str] | None = None, then: str | None = None
) -> Any:
    """Run an owner's change to the members as one write (the role judged there and
    then), and say how it went: back to the members page with a message, or the page
    with the refusal's sentence. `change` returns the message. (A change of someone's
    role or membership logs itself, which closes their streams on every instance.)"""

    async def as_owner(db: AsyncSession, role: Role) -> str:
        require_owner(role)
        return await change(db)

    try:
        message = await change_as_member(as_owner)
    except (Invalid, Conflict) as refusal:
        return await render_members(error=refusal, form=form)
    await flash(message, "success")
    return redirect(then or url_for("members.members", org=g.org.slug)), 303


@bp.post("/o/<org>/members/invite")
@org_member_required
async def invite(org: str) -> Any:
    """Invite an email with a role, or set the role of someone who already has an account."""
    require_role(Role.OWNER)
    form = await request.form
    org_row, owner = g.org, g.user

    async def run(db: AsyncSession) -> str:
        role = parse_role(form.get("role", ""))
        result = await membership.invite(
            db, org=org_row, email=form.get("email", ""), role=role, invited_by=owner
        )
        if isinstance(result, Membership):
            person = await db.get(User, result.user_id)
            name = person.name if person else form.get("email", "")
            return f"{name} is now {_a(role)} of {org_row.name}."
        return f"Invited {result.email} to join as {_a(role)}."

    return await manage(run, form=form)


@bp.post("/o/<org>/members/<int:user_id>/role")
@org_member_required
async def change_role(org: str, user_id: int) -> Any:
    """Give a member another role (owners); the last owner stays an owner."""
    require_role(Role.OWNER)
    form = await request.form
    org_id = g.org.id

    async def run(db: AsyncSession) -> str:
        role = parse_role(form.get("role", ""))
        changed = await membership.change_role(db, org_id, user_id, role)
        return f"{changed.user.name} is now {_a(role)}."

    return await manage(run)


@bp.get("/o/<org>/members/<int:user_id>/remove")
@org_member_required
async def confirm_remove(org: str, user_id: int) -> Any:
    """Ask before removing someone (owners)."""
    require_role(Role.OWNER)
    async with get_db().read() as db:
        people = await membership.members_of(db, g.org.id)
    person = next((m for m in people if m.user_id == user_id), None)
    if person is None:
        raise NotFound("There is no such member in this organization.")
    return await render_template("members/confirm_remove.html", person=person)


@bp.post("/o/<org>/members/<int:user_id>/remove")
@org_member_required
async def remove(org: str, user_id: int) -> Any:
    """Remove someone from the organization (owners); the last owner cannot go."""
    require_role(Role.OWNER)
    org_id, org_name = g.org.id, g.org.name

    async def run(db: AsyncSession) -> str:
        removed = await membership.remove_member(db, org_id, user_id)
        return f"{removed.user.name} is no longer a member of {org_name}."

    # Removing myself: this organization's pages are no longer mine.
    return await manage(run, then="/" if user_id == g.user.id else None)


@bp.post("/o/<org>/members/invitations/<int:invitation_id>/cancel")
@org_member_required
async def cancel_invitation(org: str, invitation_id: int) -> Any:
    """Withdraw an open invitation (owners)."""
    require_role(Role.OWNER)
    org_id = g.org.id

    async def run(db: AsyncSession) -> str:
        cancelled = await membership.cancel_invitation(db, org_id, invitation_id)
        return f"The invitation to {cancelled.email} is cancelled."

    return await manage(run)


def _a(role: Role) -> str:
    return f"an {role.value}" if role is Role.OWNER else f"a {role.value}"
