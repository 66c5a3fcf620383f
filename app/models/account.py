"""Organizations, people, their memberships and invitations, and API tokens."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, utcnow


class Role(enum.StrEnum):
    """What a member may do: owners manage, members contribute, viewers read."""

    OWNER = "owner"
    MEMBER = "member"
    VIEWER = "viewer"

    @property
    def can_contribute(self) -> bool:
        """Create, edit, take and move tasks."""
        return self in (Role.OWNER, Role.MEMBER)

    @property
    def can_manage(self) -> bool:
        """Manage members, sprints and stories."""
        return self is Role.OWNER


ROLE_VALUES = tuple(r.value for r in Role)
ROLE_CHECK = "role IN ('owner', 'member', 'viewer')"


class Organization(Base):
    """A tenant. `last_event_id` numbers its event log (see app.events.log)."""

    __tablename__ = "organization"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    last_event_id: Mapped[int] = mapped_column(default=0)
    # An IANA zone ("Europe/Paris"): where the organization's days begin and end.
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(Base):
    """A person, known by their OpenID Connect issuer and subject."""

    __tablename__ = "user"
    __table_args__ = (UniqueConstraint("oidc_issuer", "oidc_subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    oidc_issuer: Mapped[str] = mapped_column(String(500))
    oidc_subject: Mapped[str] = mapped_column(String(255))
    email: Mapped[str] = mapped_column(String(320), index=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def first_name(self) -> str:
        return self.name.split()[0] if self.name.strip() else self.email


class Membership(Base):
    """A user's role in one organization."""

    __tablename__ = "membership"
    __table_args__ = (
        UniqueConstraint("org_id", "user_id"),
        CheckConstraint(ROLE_CHECK, name="role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organization.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    organization: Mapped[Organization] = relationship(lazy="joined")
    user: Mapped[User] = relationship(lazy="joined")

    @property
    def role_enum(self) -> Role:
        return Role(self.role)


class Invitation(Base):
    """An open invitation: whoever signs in with this (verified) email joins."""

    __tablename__ = "invitation"
    __table_args__ = (
        UniqueConstraint("org_id", "email"),
        CheckConstraint(ROLE_CHECK, name="role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organization.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(320), index=True)
    role: Mapped[str] = mapped_column(String(16))
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    accepted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ApiToken(Base):
    """A personal API token; only its SHA-256 is stored."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(lazy="joined")


class UserSession(Base):
    """A signed-in browser. The cookie carries a random key; only its SHA-256 is stored,
    so signing out (or out everywhere) makes every copy of that cookie useless."""

    __tablename__ = "user_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The provider's ID token, for RP-initiated logout (id_token_hint).
    id_token: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(lazy="joined")


class IdentityChange(Base):
    """A change of who may do what (a sign-out, a revoked token, a role or membership
    changed, a renamed person or organization), written in the change's own transaction.

    Instances cache identities (app/auth/identities.py) and read this log at most
    0.5 s apart, so a change takes effect everywhere even if the message announcing it
    is lost. The ids name whose cached entries and streams it concerns; `ends_streams`
    says whether their open streams must close.
    """

    __tablename__ = "identity_change"

    id: Mapped[int] = mapped_column(primary_key=True)
    reason: Mapped[str] = mapped_column(String(32))
    ends_streams: Mapped[bool] = mapped_column(default=True)
    user_id: Mapped[int | None] = mapped_column()
    org_id: Mapped[int | None] = mapped_column()
    session_id: Mapped[int | None] = mapped_column()
    token_id: Mapped[int | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
