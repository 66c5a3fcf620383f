"""SQLite, run on the event loop's own thread, owned through SQLAlchemy's public faces.

A statement on a SQLite file in WAL mode takes microseconds and COMMIT does not wait for
the disk (synchronous=NORMAL), while handing each call to a thread and back (aiosqlite)
costs ~0.1 ms, several times per statement. So this dialect calls the standard `sqlite3`
module directly from inside SQLAlchemy's greenlet, with no thread and no await per
statement.

The one slow case is another process holding the write lock. BEGIN IMMEDIATE takes
every lock a write transaction will need, so it is the only statement that waits: it is
retried with asyncio sleeps (through SQLAlchemy's `await_`, the greenlet path its async
dialects use), never with SQLite's busy handler, which would stop the event loop. Any
other failure, a busy one included (a read snapshot that cannot become a write, say),
is raised as it is: repeating a statement in the middle of a transaction is not known
to be safe.

Registered as `sqlite+sprintboard`; `Database` uses it for every `sqlite…` URL.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import pool
from sqlalchemy.connectors.asyncio import (
    AsyncAdapt_dbapi_connection,
    AsyncAdapt_dbapi_cursor,
    AsyncAdapt_dbapi_module,
)
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL
from sqlalchemy.util import await_

log = logging.getLogger(__name__)

DRIVER = "sprintboard"
# How long BEGIN IMMEDIATE waits for another process's write lock before giving up
# with "database is locked".
BUSY_SECONDS = 30.0
# SQLITE_BUSY's primary code; SQLITE_BUSY_SNAPSHOT (517) is one of its extended codes
# that waiting cannot cure, but it never comes from BEGIN IMMEDIATE.
_SQLITE_BUSY = 5


# The SQLAlchemy minor this driver is written against: it overrides underscore hooks of
# the asyncio adapter (`_aenter_cursor`, `_rows`), which a minor release may change.
# tests/test_sqlite.py fails on any other; pyproject.toml pins it.
WRITTEN_FOR = (2, 1)


class InlineCursor(AsyncAdapt_dbapi_cursor):
    """sqlite3's cursor, called directly in SQLAlchemy's greenlet: no await per statement.

    SQLAlchemy's asyncio layer talks to cursors through `AsyncAdapt_dbapi_cursor`
    (rows are read into its buffer at execute, its fetch methods serve them); this fills
    the hooks it leaves to a driver with sqlite3's synchronous calls.
    """

    __slots__ = ()
    _awaitable_cursor_close = False  # sqlite3's close() is a plain call

    def _aenter_cursor(self, cursor: Any) -> Any:
        return cursor  # sqlite3 cursors need no opening

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        cursor: sqlite3.Cursor = self._cursor  # type: ignore[assignment]
        result = (
            cursor.execute(operation)
            if parameters is None
            else cursor.execute(operation, parameters)
        )
        if cursor.description:
            self._rows = collections.deque(cursor.fetchall())
        return result

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        return self._cursor.executemany(operation, seq_of_parameters)


class InlineConnection(AsyncAdapt_dbapi_connection):
    """A sqlite3 connection behind SQLAlchemy's asyncio adaptation, called directly."""

    __slots__ = ()
    _cursor_cls = InlineCursor

    @property
    def isolation_level(self) -> str | None:
        return self.driver_connection.isolation_level  # type: ignore[no-any-return]

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self.driver_connection.isolation_level = value

    def create_function(self, *args: Any, **kwargs: Any) -> None:
        self.driver_connection.create_function(*args, **kwargs)

    def commit(self) -> None:
        self.driver_connection.commit()

    def rollback(self) -> None:
        self.driver_connection.rollback()

    def close(self) -> None:
        self.driver_connection.close()


class InlineDBAPI(AsyncAdapt_dbapi_module):
    """The `sqlite3` module as SQLAlchemy's async engine expects a driver to look."""

    def __init__(self) -> None:
        super().__init__(sqlite3, dbapi_module=sqlite3)
        self.paramstyle = "qmark"
        for name in (
            "DatabaseError",
            "Error",
            "IntegrityError",
            "NotSupportedError",
            "OperationalError",
            "ProgrammingError",
            "sqlite_version",
            "sqlite_version_info",
            "PARSE_COLNAMES",
            "PARSE_DECLTYPES",
            "Binary",
        ):
            setattr(self, name, getattr(sqlite3, name))

    def connect(self, *args: Any, **kwargs: Any) -> InlineConnection:
        return InlineConnection(self, sqlite3.connect(*args, **kwargs))


class SQLiteDialect_inline(SQLiteDialect_pysqlite):
    """pysqlite, marked async so `create_async_engine` takes it, run without a thread.

    `begin` is the statement that opens a transaction: "BEGIN IMMEDIATE" for the
    engine that writes (so a transaction never upgrades a read lock, which is where
    "database is locked" comes from), "BEGIN" for readers (one snapshot per session).
    """

    driver = DRIVER
    supports_statement_cache = True
    is_async = True

    def __init__(
        self,
        begin: str = "BEGIN",
        autocheckpoint: bool = True,
        busy_seconds: float = BUSY_SECONDS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.begin_statement = begin
        self.autocheckpoint = autocheckpoint
        self.busy_seconds = busy_seconds

    @classmethod
    def import_dbapi(cls) -> InlineDBAPI:  # type: ignore[override]
        return InlineDBAPI()

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        return pool.AsyncAdaptedQueuePool

    def create_connect_args(self, url: URL) -> Any:
        args, options = super().create_connect_args(url)
        # No implicit BEGIN from the driver (do_begin says when), no busy handler
        # inside the driver (do_begin waits), and the pool may close a connection
        # from the garbage collector's thread.
        options.update(isolation_level=None, timeout=0, check_same_thread=False)
        return args, options

    def on_connect(self) -> Callable[[Any], None]:
        pysqlite_setup = super().on_connect()

        def setup(connection: Any) -> None:
            pysqlite_setup(connection)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA busy_timeout=0")
            connection.execute("PRAGMA foreign_keys=ON")
            connection.execute("PRAGMA synchronous=NORMAL")
            if not self.autocheckpoint:
                # COMMIT never copies the WAL into the database file (and syncs it) on
                # the loop's thread: `Checkpointer` does that in a thread.
                connection.execute("PRAGMA wal_autocheckpoint=0")

        return setup

    def do_begin(self, dbapi_connection: Any) -> None:
        """Open a transaction, waiting (without blocking the loop) for another
        process's lock; nothing has happened yet, so trying again is always safe."""
        delay, deadline = 0.001, time.monotonic() + self.busy_seconds
        while True:
            try:
                dbapi_connection.execute(self.begin_statement)
                return
            except sqlite3.OperationalError as error:
                busy = getattr(error, "sqlite_errorcode", None)
                if busy is None or busy & 0xFF != _SQLITE_BUSY or time.monotonic() > deadline:
                    raise
            await_(asyncio.sleep(delay))
            delay = min(delay * 2, 0.05)


registry.register(f"sqlite.{DRIVER}", __name__, "SQLiteDialect_inline")


CHECKPOINT_EVERY_SECONDS = 1.0


class Checkpointer:
    """Copies the WAL into the SQLite database file, in a thread, about once a second
    after writes (SQLite would do it inside a COMMIT every 1,000 pages, and a COMMIT
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
