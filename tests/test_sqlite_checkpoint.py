"""SQLite's WAL is copied into the database file by a thread, not inside a COMMIT."""

from __future__ import annotations

import asyncio
import os

import pytest
from sqlalchemy import text

from app.db import Database
from tests.conftest import ON_POSTGRES

pytestmark = pytest.mark.skipif(ON_POSTGRES, reason="a SQLite file's write-ahead log")


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
