"""Our SQLite driver (app/db/sqlite.py): the WAL checkpointer, another process's lock,
and the failures it must not retry."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator

import pytest
import sqlalchemy
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from app.db import Database, sqlite_engine
from app.db.sqlite import WRITTEN_FOR
from tests.conftest import ON_POSTGRES

pytestmark = pytest.mark.skipif(ON_POSTGRES, reason="SQLite itself")


def size(path: str) -> int:
    return os.path.getsize(path)


async def test_commits_leave_the_wal_alone_and_the_checkpointer_copies_it(tmp_path) -> None:
    path = str(tmp_path / "board.db")
    db = Database(f"sqlite+aiosqlite:///{path}")
    assert db.checkpointer is not None
    try:

        async def fill(session):  # type: ignore[no-untyped-def]
            await session.execute(text("CREATE TABLE IF NOT EXISTS filler (body TEXT)"))
            for _ in range(300):  # ~1,200 pages: past SQLite's own 1,000-page checkpoint
                await session.execute(text("INSERT INTO filler VALUES (:b)"), {"b": "x" * 16000})

        db.checkpointer.done.clear()
        await db.write(fill)
        # Committed, but the ~5 MB are still in the WAL only: the COMMIT did not copy them.
        assert size(path) < 1_000_000 < size(path + "-wal")
        await asyncio.wait_for(db.checkpointer.done.wait(), timeout=10)
        assert size(path) > 4_000_000  # the checkpointer copied them
    finally:
        await db.close()


# --- another process holding the lock ------------------------------------------------------

HOLDER = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
connection.execute("INSERT INTO note VALUES ('from the other process')")
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("COMMIT")
"""


async def start_holder(path: str, seconds: float) -> asyncio.subprocess.Process:
    """Another process that takes SQLite's write lock and keeps it for `seconds`."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, path, str(seconds), stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    assert (await process.stdout.readline()).strip() == b"holding"
    return process


@contextlib.asynccontextmanager
async def loop_watch() -> AsyncIterator[list[float]]:
    """The longest the event loop went without running a 5 ms timer, while inside."""
    gaps: list[float] = [0.0]

    async def tick() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.005)
            now = time.monotonic()
            gaps[0] = max(gaps[0], now - last)
            last = now

    ticker = asyncio.create_task(tick())
    try:
        yield gaps
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker


@pytest.fixture
async def note_db(tmp_path) -> AsyncIterator[tuple[Database, str]]:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "board.db")
    db = Database(f"sqlite+aiosqlite:///{path}")
    await db.write(lambda s: s.execute(text("CREATE TABLE note (body TEXT NOT NULL)")))
    try:
        yield db, path
    finally:
        await db.close()


async def count_notes(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(text("SELECT count(*) FROM note")) or 0)


async def test_a_write_waits_for_another_processs_lock_without_blocking_the_loop(note_db):  # type: ignore[no-untyped-def]
    db, path = note_db
    holder = await start_holder(path, 1.0)
    started = time.monotonic()
    async with loop_watch() as gaps:
        await db.write(lambda s: s.execute(text("INSERT INTO note VALUES ('ours')")))
    waited = time.monotonic() - started
    await holder.wait()
    assert waited > 0.5  # it really waited for the other process
    assert gaps[0] < 0.1  # and the loop ran all along (a blocking wait would stop it ~1 s)
    assert await count_notes(db) == 2


async def test_a_lock_held_too_long_is_database_is_locked(note_db) -> None:  # type: ignore[no-untyped-def]
    _db, path = note_db
    engine = sqlite_engine(f"sqlite+aiosqlite:///{path}", begin="BEGIN IMMEDIATE", busy_seconds=0.3)
    holder = await start_holder(path, 3.0)
    try:
        started = time.monotonic()
        with pytest.raises(OperationalError, match="database is locked"):
            async with engine.begin() as connection:
                await connection.execute(text("INSERT INTO note VALUES ('never')"))
        assert 0.3 <= time.monotonic() - started < 2.0
    finally:
        holder.kill()
        await holder.wait()
        await engine.dispose()


async def test_a_stale_read_snapshot_is_refused_at_once_not_retried(note_db) -> None:  # type: ignore[no-untyped-def]
    """A read transaction whose snapshot another process made stale cannot become a
    write transaction however long it waits (SQLITE_BUSY_SNAPSHOT): it fails at once."""
    db, path = note_db
    async with db.read() as session:
        assert await session.scalar(text("SELECT count(*) FROM note")) == 0  # snapshot taken
        holder = await start_holder(path, 0.0)
        await holder.wait()  # the other process has committed
        started = time.monotonic()
        with pytest.raises(OperationalError) as refused:
            await session.execute(text("INSERT INTO note VALUES ('stale')"))
        assert time.monotonic() - started < 0.2
        assert refused.value.orig.sqlite_errorcode == 517  # SQLITE_BUSY_SNAPSHOT
    assert await count_notes(db) == 1


async def test_a_failed_write_is_not_tried_again(note_db) -> None:  # type: ignore[no-untyped-def]
    db, _path = note_db
    calls = 0

    async def violate(session):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        await session.execute(text("INSERT INTO note VALUES (NULL)"))  # NOT NULL

    with pytest.raises(IntegrityError):
        await db.write(violate)
    assert calls == 1
    assert await count_notes(db) == 0
    await db.write(lambda s: s.execute(text("INSERT INTO note VALUES ('after')")))
    assert await count_notes(db) == 1  # and the writer is usable afterwards


def test_the_driver_runs_on_the_sqlalchemy_it_was_written_for() -> None:
    """app/db/sqlite.py subclasses SQLAlchemy's asyncio adapter and overrides its private
    hooks. A new minor release may rename or reshape them without notice: when this
    fails, read the adapter's changes, mend the driver, then move WRITTEN_FOR and the
    pin in pyproject.toml together."""
    running = tuple(int(part) for part in sqlalchemy.__version__.split(".")[:2])
    assert running == WRITTEN_FOR, (
        f"SQLAlchemy {sqlalchemy.__version__} is not the {WRITTEN_FOR[0]}.{WRITTEN_FOR[1]} "
        "that app/db/sqlite.py is written against"
    )
