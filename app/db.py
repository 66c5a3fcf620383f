"""The database: declarative base, engines, and the one way to run a write.

Reads use `Database.read()`. Writes go through `Database.write(fn)`, which runs `fn`
inside one transaction that is shielded from request cancellation: Quart cancels a
handler when its client disconnects, and a cancellation landing between BEGIN and
COMMIT would otherwise leave a pooled connection inside a transaction (every later
write then fails). The shielded task always finishes with COMMIT or ROLLBACK.

On SQLite, writes also go through one connection behind an asyncio lock (a single
writer per process) and begin with BEGIN IMMEDIATE, so a transaction never has to
upgrade a read lock to a write lock, which is where "database is locked" comes from.

SQLite statements run on the event loop's own thread (`InlineSQLiteConnection`), not
on aiosqlite's one-thread-per-connection: in WAL mode with synchronous=NORMAL a
statement takes a few microseconds and COMMIT does not wait for the disk, while each
hand-over to a thread and back costs ~0.1 ms, several per statement. Waiting for
another process's lock is the one slow case, and that wait is an asyncio sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
from sqlalchemy import DateTime, MetaData, Table, event, exc
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

T = TypeVar("T")
log = logging.getLogger(__name__)

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


# How long a statement waits for another process's lock before "database is locked".
SQLITE_BUSY_SECONDS = 30.0


class _RunNow:
    """Stands in for aiosqlite's queue to its thread: runs each queued call at once.

    SQLAlchemy's aiosqlite adapter queues a few calls (setting the isolation level)
    straight onto that queue, so it must keep its shape.
    """

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as error:  # handed to whoever awaits, as aiosqlite's thread does
            if future is not None and not future.done():
                future.set_exception(error)
        else:
            if future is not None and not future.done():
                future.set_result(result)


class InlineSQLiteConnection(aiosqlite.Connection):
    """An aiosqlite connection whose calls run on the event loop's thread, without a thread.

    A busy database (another process holds the write lock) is retried with asyncio
    sleeps rather than SQLite's blocking busy handler, so the loop never stalls on it.
    """

    def __init__(self, database: str) -> None:
        # check_same_thread=False: the pool may close a connection from another thread
        # (the garbage collector's); every other call comes from the loop's thread.
        super().__init__(
            # timeout=0: a busy database is waited for by `_execute`, not inside sqlite3.
            lambda: sqlite3.connect(
                database, isolation_level=None, check_same_thread=False, timeout=0
            ),
            iter_chunk_size=64,
        )
        self._tx = _RunNow()  # type: ignore[assignment]

    def __await__(self) -> Any:
        return self._connect().__await__()  # no thread to start

    async def _execute(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        delay, deadline = 0.001, asyncio.get_running_loop().time() + SQLITE_BUSY_SECONDS
        while True:
            try:
                return fn(*args, **kwargs)
            except sqlite3.OperationalError as error:
                if not _retryable_busy(error) or asyncio.get_running_loop().time() > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)


def _retryable_busy(error: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY: another connection holds the lock; the same call may simply be retried.

    Not SQLITE_BUSY_SNAPSHOT: a read transaction that saw an older snapshot cannot
    become a write transaction however long it waits.
    """
    code = getattr(error, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == sqlite3.SQLITE_BUSY and code != 517


def _inline_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine on `url` (a SQLite file) whose connections run inline."""
    database = make_url(url).database or ":memory:"

    async def connect() -> InlineSQLiteConnection:
        return await InlineSQLiteConnection(database)

    return create_async_engine(url, async_creator=connect, **kwargs)


def _configure_sqlite(engine: AsyncEngine, *, begin: str, autocheckpoint: bool = True) -> None:
    """WAL, foreign keys, and our own BEGIN statement.

    No busy timeout: SQLite's busy handler sleeps inside the call, which would stop
    the event loop; `InlineSQLiteConnection` waits for the lock asynchronously. Without
    `autocheckpoint`, committing never copies the WAL into the database file (and syncs
    it) on the loop's thread: `Checkpointer` does that in a thread.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below emit BEGIN instead of the driver.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=0")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        if not autocheckpoint:
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Straight to the driver: exec_driver_sql would cost a full statement execution
        # (~40 µs) on every transaction.
        cursor = connection.connection.cursor()
        try:
            cursor.execute(begin)
        except sqlite3.Error as error:  # as SQLAlchemy would have wrapped it
            raise exc.DBAPIError.instance(begin, (), error, sqlite3.Error) from error
        finally:
            cursor.close()


CHECKPOINT_EVERY_SECONDS = 1.0


class Checkpointer:
    """Copies the WAL into the SQLite database file, in a thread, about once a second
    after writes (SQLite would do it inside a COMMIT every 1,000 pages, and a COMMIT now
    runs on the event loop's thread). PASSIVE: it never waits for readers or writers."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.pending = False  # written since the last checkpoint
        self.done = asyncio.Event()  # set after each checkpoint (tests wait on it)
        self._task: asyncio.Task[None] | None = None

    def wrote(self) -> None:
        self.pending = True
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="sqlite-checkpoint")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(CHECKPOINT_EVERY_SECONDS)
            if not self.pending:
                continue
            self.pending = False
            try:
                await asyncio.to_thread(self._checkpoint)
            except sqlite3.Error:  # the next round tries again
                log.warning("WAL checkpoint of %s failed", self.path, exc_info=True)
                self.pending = True
            self.done.set()

    def _checkpoint(self) -> None:
        with contextlib.closing(sqlite3.connect(self.path, timeout=0)) as connection:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class Database:
    """Engines and sessions of one app; created in `before_serving`, closed after."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sqlite = is_sqlite(url)
        if self.sqlite:
            ensure_sqlite_directory(url)
            self.read_engine = _inline_engine(url, pool_size=8, max_overflow=8)
            _configure_sqlite(self.read_engine, begin="BEGIN")
            self.write_engine = _inline_engine(url, pool_size=1, max_overflow=0)
            path = make_url(url).database or ""
            file_backed = bool(path) and path != ":memory:"
            _configure_sqlite(
                self.write_engine, begin="BEGIN IMMEDIATE", autocheckpoint=not file_backed
            )
            self.checkpointer: Checkpointer | None = Checkpointer(path) if file_backed else None
            self._write_lock: asyncio.Lock | None = asyncio.Lock()
        else:
            self.read_engine = create_async_engine(
                url, pool_size=10, max_overflow=20, pool_pre_ping=True
            )
            self.write_engine = self.read_engine
            self.checkpointer = None
            self._write_lock = None
        self._reader = async_sessionmaker(self.read_engine, expire_on_commit=False)
        self._writer = async_sessionmaker(self.write_engine, expire_on_commit=False)
        self._inflight: set[asyncio.Task[Any]] = set()
        # Called with the events a write logged, after its COMMIT (see app.events).
        self.on_commit: list[Callable[[list[Any]], None]] = []

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
            events = session.info.pop("events", [])
        if self.checkpointer is not None:
            self.checkpointer.wrote()
        if events:
            for hook in self.on_commit:
                try:
                    hook(events)
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
