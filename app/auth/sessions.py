"""Server-side sessions: begin one at sign-in, check it on every request, end it.

The signed cookie holds only a random key; the database holds its hash and whether it
was revoked. Signing out revokes the row and logs the change (so every instance forgets
the session and closes that browser's live streams), so a copied cookie stops working
on pages, actions, the stream and the WebSocket alike.
"""

from __future__ import annotations

import hashlib
import secrets

from quart import session
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.identities import record_change
from app.db import utcnow
from app.models import User, UserSession


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def begin(db: AsyncSession, user: User, *, id_token: str | None = None) -> str:
    """Record a new session for `user` and return the key for the cookie."""
    key = secrets.token_urlsafe(32)
    db.add(UserSession(user_id=user.id, key_hash=key_hash(key), id_token=id_token))
    await db.flush()
    return key


def remember(key: str) -> None:
    """Put a fresh session in the cookie: nothing of the previous one survives (rotation)."""
    session.clear()
    session["sid"] = key
    session.permanent = True


async def find(db: AsyncSession, key: str) -> UserSession | None:
    """The live (unrevoked) session with this key."""
    return await db.scalar(
        select(UserSession).where(
            UserSession.key_hash == key_hash(key), UserSession.revoked_at.is_(None)
        )
    )


async def end(db: AsyncSession, key: str) -> UserSession | None:
    """Revoke one session; returns it (for its id token and id), if it was live."""
    found = await find(db, key)
    if found is not None:
        found.revoked_at = utcnow()
        await db.flush()
        await record_change(db, "signed out", session_id=found.id)
    return found


async def end_all(db: AsyncSession, user_id: int) -> None:
    """Revoke every session of a user ("sign out everywhere")."""
    await db.execute(
        update(UserSession)
        .where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    await record_change(db, "signed out", user_id=user_id)
