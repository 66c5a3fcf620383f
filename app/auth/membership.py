"""Who belongs to an organization: invite, change roles, remove, cancel invitations.

The one rule beyond tenancy: an organization always keeps at least one owner. The
owners' rows are locked before they are counted (on PostgreSQL; SQLite has one writer
anyway), so two owners demoting each other at the same moment cannot both succeed.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.accounts import add_member, clean_email, find_user_by_email
from app.auth.identities import record_change
from app.errors import Conflict, NotFound
from app.models import Invitation, Membership, Organization, Role, User


async def members_of(session: AsyncSession, org_id: int) -> Sequence[Membership]:
    """The organization's members: owners first, then members, then viewers, by name."""
    rank = {Role.OWNER.value: 0, Role.MEMBER.value: 1, Role.VIEWER.value: 2}
    rows = list(
        await session.scalars(
            select(Membership)
            .join(User, User.id == Membership.user_id)
            .where(Membership.org_id == org_id)
            .order_by(func.lower(User.name), User.id)
        )
    )
    return sorted(rows, key=lambda m: rank.get(m.role, 3))


async def open_invitations(session: AsyncSession, org_id: int) -> Sequence[Invitation]:
    """Invitations nobody has accepted yet, oldest first."""
    rows = await session.scalars(
        select(Invitation)
        .where(Invitation.org_id == org_id, Invitation.accepted_at.is_(None))
        .order_by(Invitation.id)
    )
    return rows.all()


async def invite(
    session: AsyncSession, *, org: Organization, email: str, role: Role, invited_by: User
) -> Membership | Invitation:
    """Invite an email with a role; for someone already a member, change their role."""
    email = clean_email(email)
    user = await find_user_by_email(session, email)
    if user is not None:
        existing = await session.scalar(
            select(Membership.id).where(Membership.org_id == org.id, Membership.user_id == user.id)
        )
        if existing is not None:
            # Same rules as the role select: the last owner stays an owner.
            return await change_role(session, org.id, user.id, role)
    return await add_member(session, org=org, email=email, role=role, invited_by=invited_by)


async def change_role(session: AsyncSession, org_id: int, user_id: int, role: Role) -> Membership:
    """Give a member another role, unless that leaves the organization without an owner."""
    membership = await _membership(session, org_id, user_id)
    if membership.role == role.value:
        return membership
    if membership.role == Role.OWNER.value and role is not Role.OWNER:
        await _keep_an_owner(session, org_id, membership)
    membership.role = role.value
    await session.flush()
    await record_change(session, "membership changed", user_id=user_id, org_id=org_id)
    return membership


async def remove_member(session: AsyncSession, org_id: int, user_id: int) -> Membership:
    """Take someone out of the organization, unless they are its last owner.

    Tasks they own keep them as owner, so the board and the history stay true.
    """
    membership = await _membership(session, org_id, user_id)
    if membership.role == Role.OWNER.value:
        await _keep_an_owner(session, org_id, membership)
    await session.delete(membership)
    await session.flush()
    await record_change(session, "membership changed", user_id=user_id, org_id=org_id)
    return membership


async def cancel_invitation(session: AsyncSession, org_id: int, invitation_id: int) -> Invitation:
    """Withdraw an invitation nobody has accepted yet."""
    invitation = await session.scalar(
        select(Invitation).where(
            Invitation.id == invitation_id,
            Invitation.org_id == org_id,
            Invitation.accepted_at.is_(None),
        )
    )
    if invitation is None:
        raise NotFound("There is no such open invitation here.")
    await session.delete(invitation)
    await session.flush()
    return invitation


async def _membership(session: AsyncSession, org_id: int, user_id: int) -> Membership:
    membership = await session.scalar(
        select(Membership).where(Membership.org_id == org_id, Membership.user_id == user_id)
    )
    if membership is None:
        raise NotFound("There is no such member in this organization.")
    return membership


async def _keep_an_owner(session: AsyncSession, org_id: int, leaving: Membership) -> None:
    """Refuse when `leaving` is the only owner left."""
    owners = list(
        await session.scalars(
            select(Membership.id)
            .where(Membership.org_id == org_id, Membership.role == Role.OWNER.value)
            .with_for_update()
        )
    )
    if owners == [leaving.id]:
        raise Conflict(
            f"{leaving.user.name} is the last owner of this organization; "
            "make someone else an owner first."
        )
