"""Who is asking, remembered by each instance and forgotten within a second of a change.

Every page, action and stream begins by finding who is asking (their session or API
token) and their membership in the organization. Reading both from the database on
every request was most of what opening a stream cost. Each instance now keeps what it
read, and forgets it:

- at once on the instance that made the change, right after its COMMIT;
- on the other instances as soon as the broker's control channel tells them;
- and in every case within `CHECK_SECONDS` of the change, even when that message was
  lost or the change came from the command line: every change of who may do what is
  also a row of the `identity_change` log, written in the change's own transaction, and
  an instance reads the rows it has not seen before it trusts what it cached, whenever
  its last look is older than `CHECK_SECONDS` (a background loop keeps it fresh, so a
  request rarely waits for it).

An entry lives at most `MAX_AGE_SECONDS`, and at most `MAX_ENTRIES` are kept. A miss is
never kept: a new token or session is found on its first use. What is kept is column
values; every hit builds fresh detached ORM objects, so no two requests share one.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Generic, TypeVar

from quart import Quart, current_app
from sqlalchemy import delete, insert, inspect, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from app.db import Base, Database, table_of, utcnow
from app.db.outbox import outbox
from app.models import IdentityChange
from app.outages import log_failure

log = logging.getLogger(__name__)

CHECK_SECONDS = 0.5  # how stale a cached identity may be after a change: the bound
MAX_AGE_SECONDS = 60.0
MAX_ENTRIES = 50_000
# Ids are handed out at INSERT and rows appear at COMMIT, so on PostgreSQL a lower id can
# appear after a higher one: an id skipped over is looked for again for this long.
HOLE_SECONDS = 10.0
RECENT_IDS = 100  # at start, ids this close below the newest may still be committing
PRUNE_EVERY_SECONDS = 600.0
KEEP_CHANGES = dt.timedelta(hours=1)  # far longer than any instance looks back

T = TypeVar("T")
M = TypeVar("M", bound=Base)
_change = table_of(IdentityChange)


@dataclass(frozen=True)
class Change:
    """One row of the log: whose identities changed, and whether their streams end."""

    id: int
    reason: str
    ends_streams: bool = True
    user_id: int | None = None
    org_id: int | None = None
    session_id: int | None = None
    token_id: int | None = None

    def as_message(self) -> dict[str, Any]:
        return asdict(self)


_CHANGE_COLUMNS = [_change.c[f.name] for f in fields(Change)]


async def record_change(
    session: AsyncSession,
    reason: str,
    *,
    ends_streams: bool = True,
    user_id: int | None = None,
    org_id: int | None = None,
    session_id: int | None = None,
    token_id: int | None = None,
) -> None:
    """Log a change of who may do what, in the transaction that makes it. Once it
    commits, every instance forgets what it cached and ends the streams it names."""
    change = Change(0, reason, ends_streams, user_id, org_id, session_id, token_id)
    values = {k: v for k, v in change.as_message().items() if k != "id"}
    change_id = await session.scalar(
        insert(_change).values(created_at=utcnow(), **values).returning(_change.c.id)
    )
    assert change_id is not None
    outbox(session).identity_changes.append(replace(change, id=change_id))


async def latest_ids(session: AsyncSession, count: int) -> list[int]:
    """The ids of the newest `count` changes, newest first."""
    query = select(_change.c.id).order_by(_change.c.id.desc()).limit(count)
    return list(await session.scalars(query))


async def prune_changes(session: AsyncSession) -> None:
    """Delete the log's rows older than `KEEP_CHANGES`."""
    await session.execute(delete(_change).where(_change.c.created_at < utcnow() - KEEP_CHANGES))


async def changes_since(session: AsyncSession, after: int, holes: Sequence[int]) -> list[Change]:
    """The changes after id `after`, and those with the ids in `holes`."""
    which = _change.c.id > after
    if holes:
        which = or_(which, _change.c.id.in_(holes))
    rows = await session.execute(select(*_CHANGE_COLUMNS).where(which).order_by(_change.c.id))
    return [Change(**row._mapping) for row in rows]


# --- the cached values: column values in, fresh detached objects out -----------------------


@dataclass(frozen=True)
class Snapshot(Generic[M]):
    """A row's column values, to build a detached ORM object from later."""

    model: type[M]
    values: tuple[tuple[str, Any], ...]
    related: tuple[tuple[str, Snapshot[Any]], ...] = ()

    @classmethod
    def of(
        cls, obj: M, *, leave_out: Sequence[str] = (), related: Sequence[str] = ()
    ) -> Snapshot[M]:
        """`obj`'s columns but those named in `leave_out` (on it and its `related`
        objects, which are taken along: loaded relationships)."""
        mapper = inspect(type(obj))
        return cls(
            type(obj),
            tuple(
                (c.key, getattr(obj, c.key)) for c in mapper.column_attrs if c.key not in leave_out
            ),
            tuple((name, cls.of(getattr(obj, name), leave_out=leave_out)) for name in related),
        )

    def revive(self) -> M:
        """A detached object as if just loaded (left-out columns raise if read), built
        with the ORM's public API: an empty instance, each column set as committed (no
        history, nothing to flush), then made detached with its identity."""
        obj = self.model()
        for key, value in self.values:
            set_committed_value(obj, key, value)
        make_transient_to_detached(obj)
        for name, snapshot in self.related:
            set_committed_value(obj, name, snapshot.revive())
        return obj


@dataclass
class _Entry:
    value: Any
    stored_at: float


@dataclass
class Identities:
    """The cache, and the reading of the change log that keeps it within the bound.

    `apply(changes)` is called with every change this instance learns of (its own
    commits, the broker's messages, the log), at most once each: it ends the streams
    they name. Wire it before `start`."""

    db: Database
    check_seconds: float = CHECK_SECONDS
    max_age: float = MAX_AGE_SECONDS
    max_entries: int = MAX_ENTRIES
    clock: Callable[[], float] = time.monotonic
    apply: Callable[[Sequence[Change]], None] = lambda changes: None
    hits: int = 0
    misses: int = 0
    _entries: OrderedDict[Hashable, _Entry] = field(default_factory=OrderedDict)
    _newest: int = 0  # the newest log row read
    _holes: dict[int, float] = field(default_factory=dict)  # ids below it not seen → since
    _applied: dict[int, float] = field(default_factory=dict)  # ids applied → when
    _checked_at: float = -math.inf  # when the last complete read of the log began
    _pruned_at: float = -math.inf
    _generation: int = 0  # bumped by every forgetting: loads begun before are not kept
    _reading: asyncio.Task[None] | None = None
    _loop: asyncio.Task[None] | None = None

    @property
    def generation(self) -> int:
        """Changes every time this instance learns of a change: a stream that checked
        who it was for under one generation and subscribed under another must check
        again (the change may have named it before it could be closed)."""
        return self._generation

    async def start(self) -> None:
        began = self.clock()
        async with self.db.read() as session:
            present = set(await latest_ids(session, RECENT_IDS))
        self._newest = max(present, default=0)
        # Ids below the newest not there yet may be transactions still committing.
        for missing in range(max(1, self._newest - RECENT_IDS + 1), self._newest):
            if missing not in present:
                self._holes[missing] = began
        self._checked_at = began
        self._loop = asyncio.create_task(self._keep_fresh(), name="sprintboard-identities")

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop

    async def get(self, key: Hashable, load: Callable[[], Awaitable[T | None]]) -> T | None:
        """What `load()` returns for `key`, from the cache when it is fresh enough."""
        await self.fresh()
        entry = self._entries.get(key)
        now = self.clock()
        if entry is not None and now - entry.stored_at < self.max_age:
            self._entries.move_to_end(key)
            self.hits += 1
            return entry.value  # type: ignore[no-any-return]
        self.misses += 1
        generation = self._generation
        value = await load()
        # A change learnt while loading may have come after the read: keep nothing then.
        if value is not None and generation == self._generation:
            self._entries[key] = _Entry(value, now)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value

    def forget_all(self) -> None:
        self._entries.clear()
        self._generation += 1

    def learn(self, changes: Sequence[Change]) -> None:
        """Changes committed here, heard from another instance or read from the log:
        forget everything cached, and apply each change once."""
        fresh = [c for c in changes if c.id not in self._applied]
        if not fresh:
            return
        self.forget_all()
        now = self.clock()
        self._applied.update((c.id, now) for c in fresh)
        self.apply(fresh)

    async def fresh(self) -> None:
        """Return once the log has been read by a read that began at most
        `check_seconds` before this call (one read at a time; callers share it). A read
        that began earlier and took long does not count: another one is made."""
        arrived = self.clock()
        while self._checked_at <= arrived - self.check_seconds:
            reading = self._reading
            # A read that is over does not count, even before its done-callback ran:
            # awaiting a finished task does not yield, so waiting on it again would spin
            # without end (a read that began too early, met in the same loop round).
            if reading is None or reading.done():
                reading = self._reading = asyncio.ensure_future(self._read_log())
                reading.add_done_callback(self._done_reading)
            await asyncio.shield(reading)

    def _done_reading(self, task: asyncio.Task[None]) -> None:
        if self._reading is task:
            self._reading = None
        error = None if task.cancelled() else task.exception()
        if error is not None:
            log_failure(log, "could not read the identity change log", error)

    async def _read_log(self) -> None:
        began = self.clock()
        async with self.db.read() as session:
            changes = await changes_since(session, self._newest, list(self._holes))
        self.learn(changes)
        found = {c.id for c in changes}
        newest = max(found, default=self._newest)
        for missing in range(self._newest + 1, newest):
            if missing not in found:
                self._holes[missing] = began
        self._newest = max(self._newest, newest)
        for change_id in found:
            self._holes.pop(change_id, None)
        # A hole this old was a rolled-back transaction: it will never fill.
        self._holes = {i: at for i, at in self._holes.items() if began - at < HOLE_SECONDS}
        # An id applied this long ago can no longer come back (nor be a hole).
        self._applied = {i: at for i, at in self._applied.items() if began - at < 6 * HOLE_SECONDS}
        self._checked_at = began

    async def _keep_fresh(self) -> None:
        """Read the log in the background too, as soon as the last read is due, so that
        requests rarely wait for it and the streams a change names end even when no
        request comes in. Now and then, drop log rows nobody will read again."""
        while True:
            due = self.check_seconds - (self.clock() - self._checked_at)
            await asyncio.sleep(max(due, self.check_seconds / 10))
            try:
                await self.fresh()
                if self.clock() - self._pruned_at > PRUNE_EVERY_SECONDS:
                    self._pruned_at = self.clock()
                    await self.db.write(prune_changes)
            except asyncio.CancelledError:
                raise
            except Exception:  # the database may be away for a moment; requests will say
                log.debug("identity change log not read", exc_info=True)


EXTENSION = "identities"  # in app.extensions: this instance's cache, made by create_app


def install(app: Quart, db: Database) -> Identities:
    """Give the app its cache of who is asking (before it serves); started by the caller."""
    identities = app.extensions[EXTENSION] = Identities(db)
    return identities


def current_identities(app: Quart | None = None) -> Identities:
    """The running app's (or `app`'s) cache of who is asking."""
    return (app or current_app).extensions[EXTENSION]  # type: ignore[no-any-return]
