"""Organizations, members, invitations and API tokens: the rules, once.

Used by sign-in, the members pages, the CLI and the demo data.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.identities import record_change
from app.db import table_of, utcnow
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.inputs import row_id
from app.models import ApiToken, Invitation, Membership, Organization, Role, User
from app.timefmt import clean_time_zone

NO_ORGANIZATION = "You are not a member of any organization."
NO_SUCH_ORGANIZATION = "There is no such organization, or you are not a member of it."
# The issuer of people known only by email: demo people, development sign-in, and
# anyone added before they signed in. A provider sign-in with their email adopts them.
DEV_ISSUER = "urn:sprintboard:dev"
TOKEN_PREFIX = "sbt_"
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def clean_email(value: str) -> str:
    email = value.strip().lower()
    if not EMAIL_RE.match(email):
        raise Invalid(f"“{value}” is not an email address.", field="email")
    return email


def parse_role(value: str) -> Role:
    try:
        return Role(value.strip().lower())
    except ValueError:
        raise Invalid(
            f"“{value}” is not a role; use owner, member or viewer.", field="role"
        ) from None


async def find_org(session: AsyncSession, slug: str) -> Organization:
    org = await session.scalar(select(Organization).where(Organization.slug == slug))
    if org is None:
        raise NotFound(f"There is no organization “{slug}”.")
    return org


async def find_user_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(
        select(User).where(func.lower(User.email) == email.lower()).order_by(User.id).limit(1)
    )


async def create_org(
    session: AsyncSession, *, slug: str, name: str, owner_email: str
) -> Organization:
    """A new organization whose first owner is invited (or added, if already a user)."""
    slug = slug.strip().lower()
    if not SLUG_RE.match(slug):
        raise Invalid(
            f"“{slug}” is not a valid slug: use lowercase letters, digits and dashes.",
            field="slug",
        )
    if not name.strip():
        raise Invalid("An organization needs a name.", field="name")
    if await session.scalar(select(Organization.id).where(Organization.slug == slug)):
        raise Conflict(f"An organization “{slug}” already exists.")
    org = Organization(slug=slug, name=name.strip())
    session.add(org)
    await session.flush()
    await add_member(session, org=org, email=owner_email, role=Role.OWNER)
    return org


async def add_member(
    session: AsyncSession,
    *,
    org: Organization,
    email: str,
    role: Role,
    invited_by: User | None = None,
) -> Membership | Invitation:
    """Set an existing user's role, or invite the email to join with that role."""
    email = clean_email(email)
    user = await find_user_by_email(session, email)
    if user is not None:
        membership = await session.scalar(
            select(Membership).where(Membership.org_id == org.id, Membership.user_id == user.id)
        )
        if membership is None:
            membership = Membership(org_id=org.id, user_id=user.id, role=role.value)
            session.add(membership)
        elif membership.role != role.value:
            membership.role = role.value
            await record_change(session, "membership changed", user_id=user.id, org_id=org.id)
        await session.flush()
        return membership
    invitation = await session.scalar(
        select(Invitation).where(Invitation.org_id == org.id, Invitation.email == email)
    )
    if invitation is None:
        invitation = Invitation(
            org_id=org.id,
            email=email,
            role=role.value,
            invited_by_id=invited_by.id if invited_by else None,
        )
        session.add(invitation)
    else:
        invitation.role = role.value
    await session.flush()
    return invitation


async def sign_in_user(
    session: AsyncSession, *, issuer: str, subject: str, email: str, name: str
) -> User:
    """Find or create the user of a verified identity, and accept their invitations.

    Someone added by email before they ever signed in (demo data, `member add`, an
    owner invited with `org create`) has a placeholder identity; their first sign-in
    through the provider with that verified email makes that user theirs: same id,
    same memberships. A user who already has a provider identity is never re-linked by
    email, so a second account at the provider with the same address gets its own.
    """
    user = await session.scalar(
        select(User).where(User.oidc_issuer == issuer, User.oidc_subject == subject)
    )
    email = clean_email(email)
    if user is None and issuer != DEV_ISSUER:
        user = await _placeholder_user(session, email)
        if user is not None:
            user.oidc_issuer, user.oidc_subject = issuer, subject
            await record_change(session, "renamed", ends_streams=False, user_id=user.id)
    if user is None:
        user = User(
            oidc_issuer=issuer,
            oidc_subject=subject,
            email=email,
            name=name.strip() or email.split("@")[0],
        )
        session.add(user)
        await session.flush()
    else:
        name = name.strip() or user.name
        if (user.email, user.name) != (email, name):
            user.email, user.name = email, name
            await record_change(session, "renamed", ends_streams=False, user_id=user.id)
    await accept_invitations(session, user)
    return user


async def _placeholder_user(session: AsyncSession, email: str) -> User | None:
    """The user added under `email` who has never signed in through a provider."""
    return await session.scalar(
        select(User)
        .where(func.lower(User.email) == email, User.oidc_issuer == DEV_ISSUER)
        .order_by(User.id)
        .limit(1)
    )


async def accept_invitations(session: AsyncSession, user: User) -> None:
    """Turn every open invitation to the user's email into a membership."""
    invitations = await session.scalars(
        select(Invitation).where(
            func.lower(Invitation.email) == user.email.lower(),
            Invitation.accepted_at.is_(None),
        )
    )
    for invitation in invitations:
        exists = await session.scalar(
            select(Membership.id).where(
                Membership.org_id == invitation.org_id, Membership.user_id == user.id
            )
        )
        if not exists:
            session.add(Membership(org_id=invitation.org_id, user_id=user.id, role=invitation.role))
        invitation.accepted_at = utcnow()
    await session.flush()


async def memberships_of(session: AsyncSession, user_id: int) -> Sequence[Membership]:
    """The user's memberships, oldest first (the first is their default organization)."""
    rows = await session.scalars(
        select(Membership).where(Membership.user_id == user_id).order_by(Membership.id)
    )
    return rows.all()


@dataclass(frozen=True)
class Access:
    """Which organization a member acts in, and with which role."""

    org_id: int
    role: Role


# Resolved on every API change, so built once, on the tables (no ORM objects needed).
_membership = table_of(Membership)
_organization = table_of(Organization)
_ACCESS_BY_REF = (
    select(_membership.c.org_id, _membership.c.role)
    .join(_organization, _organization.c.id == _membership.c.org_id)
    .where(
        _membership.c.user_id == bindparam("user_id"),
        or_(_organization.c.slug == bindparam("slug"), _organization.c.id == bindparam("org_id")),
    )
    .limit(1)
)
_ACCESS_BY_ID = select(_membership.c.org_id, _membership.c.role).where(
    _membership.c.user_id == bindparam("user_id"), _membership.c.org_id == bindparam("org_id")
)
_FIRST_ACCESS = (
    select(_membership.c.org_id, _membership.c.role)
    .where(_membership.c.user_id == bindparam("user_id"))
    .order_by(_membership.c.id)
    .limit(1)
)


def org_id_in(org_ref: str) -> int | None:
    """The organization id `org_ref` may be (a slug can be all digits too), or None."""
    return row_id(org_ref)


async def access_of(session: AsyncSession, user_id: int, org: int | str | None) -> Access | None:
    """The user's organization and role there: `org` is an id, a reference a client
    sent (a slug or an id), or None for their first organization."""
    params: dict[str, object] = {"user_id": user_id}
    if isinstance(org, int):
        query = _ACCESS_BY_ID
        params["org_id"] = org
    elif org:
        query = _ACCESS_BY_REF
        params |= {"slug": org, "org_id": org_id_in(org)}
    else:
        query = _FIRST_ACCESS
    row = (await session.execute(query, params)).one_or_none()
    return None if row is None else Access(org_id=row.org_id, role=Role(row.role))


async def member_access(session: AsyncSession, user_id: int, org: int | str | None) -> Access:
    """`access_of`, or the NotFound a person reads when they are not a member there.

    Changes call it inside their own transaction, so that a role changed a moment ago
    is the role they are judged by."""
    access = await access_of(session, user_id, org)
    if access is None:
        raise NotFound(NO_ORGANIZATION if org is None else NO_SUCH_ORGANIZATION)
    return access


def require_contributor(role: Role) -> None:
    """Refuse (403) unless `role` may change tasks: members and owners."""
    if not role.can_contribute:
        raise Forbidden("Viewers can follow the board but not change it.")


def require_owner(role: Role) -> None:
    """Refuse (403) unless `role` may manage members, sprints and stories: owners."""
    if not role.can_manage:
        raise Forbidden("Only owners of this organization can do that.")


async def set_time_zone(session: AsyncSession, *, org_id: int, name: str, role: Role) -> str:
    """Where the organization's days begin and end (owners); returns the zone's name."""
    require_owner(role)
    zone_name = clean_time_zone(name)
    await session.execute(
        update(Organization).where(Organization.id == org_id).values(time_zone=zone_name)
    )
    await record_change(session, "organization changed", ends_streams=False, org_id=org_id)
    return zone_name


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(session: AsyncSession, *, user: User, name: str = "") -> str:
    """Make a personal API token; the plain text is returned once and never stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(user_id=user.id, name=name, token_hash=hash_token(token), prefix=token[:10])
    )
    await session.flush()
    return token


@dataclass(frozen=True)
class TokenUse:
    """A live token's owner, and what `touch_token` needs to know about the token."""

    user: User
    token_id: int
    last_used_at: dt.datetime | None


# Runs on every API request: built once, one row, the user without relationships.
_TOKEN_USE = (
    select(User, ApiToken.id, ApiToken.last_used_at)
    .join(ApiToken, ApiToken.user_id == User.id)
    .where(ApiToken.token_hash == bindparam("token_hash"), ApiToken.revoked_at.is_(None))
)


async def token_use(session: AsyncSession, token: str) -> TokenUse | None:
    """Who the live (unrevoked) token with this text belongs to, or None."""
    row = (await session.execute(_TOKEN_USE, {"token_hash": hash_token(token)})).one_or_none()
    return None if row is None else TokenUse(user=row[0], token_id=row[1], last_used_at=row[2])


async def touch_token(session: AsyncSession, token_id: int) -> None:
    """Note that a token was just used."""
    await session.execute(
        update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=utcnow())
    )


async def tokens_of(session: AsyncSession, user_id: int) -> Sequence[ApiToken]:
    rows = await session.scalars(
        select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id.desc())
    )
    return rows.all()


async def revoke_token(session: AsyncSession, *, user_id: int, token_id: int) -> ApiToken:
    """Revoke one of the user's own tokens; it stops working at once."""
    row = await session.scalar(
        select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user_id)
    )
    if row is None:
        raise NotFound("There is no such token of yours.")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        await session.flush()
        await record_change(session, "token revoked", token_id=row.id)
    return row
