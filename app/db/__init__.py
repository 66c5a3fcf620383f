"""The database: declarative base, engines, and the one way to run a write.

Reads use `Database.read()`. Writes go through `Database.write(fn)`, which runs `fn`
inside one transaction that is shielded from request cancellation: Quart cancels a
handler when its client disconnects, and a cancellation landing between BEGIN and
COMMIT would otherwise leave a pooled connection inside a transaction (every later
write then fails). The shielded task always finishes with COMMIT or ROLLBACK.

On SQLite, writes also go through one connection behind an asyncio lock (a single
writer per process) and begin with BEGIN IMMEDIATE, so a transaction never has to
upgrade a read lock to a write lock, which is where "database is locked" comes from.
Its statements run on the event loop's own thread: see app/db/sqlite.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from quart import current_app
from sqlalchemy import DateTime, MetaData, Table, select
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from app.db.outbox import Outbox, drained
from app.db.sqlite import DRIVER as SQLITE_DRIVER
from app.db.sqlite import Checkpointer
from app.errors import NotFound

T = TypeVar("T")
log = logging.getLogger(__name__)
CONNECT_SECONDS = 5.0  # PostgreSQL: give up connecting after this
STATEMENT_SECONDS = 8.0  # ... and waiting for a statement's answer

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base of every model; constraint names follow one convention on every database."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def table_of(model: type[Base]) -> Table:
    """The Core table of a model, for statements that skip the ORM on hot paths."""
    return Base.metadata.tables[model.__tablename__]


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and always returned timezone-aware.

    SQLite has no time zones and hands back naive values; PostgreSQL keeps them.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    """Now, in UTC, to the microsecond."""
    return dt.datetime.now(dt.UTC)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def ensure_sqlite_directory(url: str) -> None:
    """Create the folder of a SQLite file (`instance/` by default) if it is missing."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def sqlite_engine(
    url: str, *, begin: str, autocheckpoint: bool = True, **kwargs: Any
) -> AsyncEngine:
    """An async engine on a SQLite file, run by our inline dialect (app/db/sqlite.py)."""
    inline = make_url(url).set(drivername=f"sqlite+{SQLITE_DRIVER}")
    return create_async_engine(inline, begin=begin, autocheckpoint=autocheckpoint, **kwargs)


class Database:
    """Engines and sessions of one app; created in `before_serving`, closed after."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sqlite = is_sqlite(url)
        if self.sqlite:
            ensure_sqlite_directory(url)
            path = make_url(url).database or ""
            file_backed = bool(path) and path != ":memory:"
            self.read_engine = sqlite_engine(url, begin="BEGIN", pool_size=8, max_overflow=8)
            # One connection writes, so writers queue here instead of at SQLite's lock.
            self.write_engine = sqlite_engine(
                url,
                begin="BEGIN IMMEDIATE",
                autocheckpoint=not file_backed,
                pool_size=1,
                max_overflow=0,
            )
            self.checkpointer: Checkpointer | None = Checkpointer(path) if file_backed else None
            self._write_lock: asyncio.Lock | None = asyncio.Lock()
        else:
            self.read_engine = create_async_engine(
                url,
                pool_size=10,
                max_overflow=20,
                pool_pre_ping=True,
                pool_timeout=CONNECT_SECONDS,  # all busy (connecting to a server that is away)
                # While the server is away a request must still be answered (503) within
                # 10 s, also when its packets vanish instead of being refused.
                connect_args={"timeout": CONNECT_SECONDS, "command_timeout": STATEMENT_SECONDS},
            )
            self.write_engine = self.read_engine
            self.checkpointer = None
            self._write_lock = None
        self._reader = async_sessionmaker(self.read_engine, expire_on_commit=False)
        self._writer = async_sessionmaker(self.write_engine, expire_on_commit=False)
        self._inflight: set[asyncio.Task[Any]] = set()
        # Called with a write's outbox after its COMMIT, if it has anything in it
        # (app/db/outbox.py): the identity caches first, then the live fan-out.
        self.after_commit: list[Callable[[Outbox], None]] = []

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reading; whatever it began is rolled back at the end."""
        async with self._reader() as session:
            yield session

    async def write(self, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run `fn(session)` in one write transaction that cancellation cannot split.

        If the caller is cancelled (its client went away), the transaction still runs
        to COMMIT or ROLLBACK in its own task; only the caller stops waiting.
        """
        task = asyncio.ensure_future(self._run_write(fn))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        return await asyncio.shield(task)

    async def _run_write(self, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
        lock = self._write_lock or contextlib.nullcontext()
        async with lock, self._writer() as session:
            async with session.begin():
                result = await fn(session)
            box = drained(session)
        if self.checkpointer is not None:
            self.checkpointer.wrote()
        for hook in self.after_commit if box else ():
            try:
                hook(box)
            except Exception:  # the change is committed; a failed announcement is
                log.exception("after-commit hook failed")  # caught up from the log
        return result

    async def close(self) -> None:
        """Let shielded writes finish, then close every connection."""
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
        if self.checkpointer is not None:
            await self.checkpointer.close()  # the last connection to close checkpoints
        await self.read_engine.dispose()
        if self.write_engine is not self.read_engine:
            await self.write_engine.dispose()


R = TypeVar("R", bound=Base)


async def find_in_org(
    session: AsyncSession,
    model: type[R],
    org_id: int,
    row_id: int,
    *,
    what: str,
    for_update: bool = False,
    shared: bool = False,
) -> R:
    """The `model` row with this id in this organization, or the NotFound a person reads.

    Tenancy: another organization's row answers exactly like one that does not exist.
    The row is read afresh even if the session holds an older copy of it. With
    `for_update`, it stays locked until the write ends (PostgreSQL: a second write of
    the same row waits, then reads what the first wrote; SQLite has one writer anyway);
    with `shared` too, it is held against changes only (FOR SHARE)."""
    query = (
        select(model)
        .where(model.id == row_id, model.org_id == org_id)  # type: ignore[attr-defined]
        .execution_options(populate_existing=True)
    )
    if for_update:  # `shared`: FOR SHARE, others may read-lock it too
        query = query.with_for_update(of=model, read=shared)
    row: R | None = await session.scalar(query)
    if row is None:
        raise NotFound(f"There is no {what} #{row_id} here.")
    return row


def get_db() -> Database:
    """The running app's database."""
    return current_app.extensions["db"]  # type: ignore[no-any-return]
