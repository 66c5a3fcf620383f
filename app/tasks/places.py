"""Where work is: locks on the places stories and tasks move between, taken in one order.

Changes of the sprint cycle touch several rows at once (a sprint, the stories and tasks
in it, the positions of a list). On PostgreSQL two of them at the same moment must wait
for each other rather than deadlock or act on what the other is changing, so every one
takes its locks in the same order: the organization's backlog, then sprints by id, then
stories, then tasks (the organization's event counter comes last, in app.events.log).
SQLite has one writer at a time; there these locks are no-ops.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import find_in_org
from app.models import Sprint

# The first key of the backlog's advisory lock (the second is the organization's id).
_BACKLOG_LOCK = 27_001


def _postgres(session: AsyncSession) -> bool:
    return session.bind is not None and session.bind.dialect.name == "postgresql"


async def lock_backlog(session: AsyncSession, org_id: int, *, shared: bool = False) -> None:
    """Hold the organization's backlog (its order, what is in it) until the write ends;
    `shared` lets others that only add to it go on together."""
    if _postgres(session):
        lock = func.pg_advisory_xact_lock_shared if shared else func.pg_advisory_xact_lock
        await session.execute(select(lock(_BACKLOG_LOCK, org_id)))


async def lock_places(
    session: AsyncSession, org_id: int, places: Iterable[int | None], *, shared: bool = False
) -> dict[int, Sprint]:
    """Lock these places (sprint ids; None: the backlog) in the one order, and return the
    sprints as they are now. `shared`: only adding to them (a new task)."""
    wanted = set(places)
    if None in wanted:
        await lock_backlog(session, org_id, shared=shared)
    sprints = {}
    for sprint_id in sorted(i for i in wanted if i is not None):
        sprints[sprint_id] = await find_in_org(
            session, Sprint, org_id, sprint_id, what="sprint", for_update=True, shared=shared
        )
    return sprints
