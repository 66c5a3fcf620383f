"""`sprintboard backup PATH`: taken while a real server runs and four people write, it
holds every change acknowledged before it began, passes its integrity check, and a
server started on it (a restore) serves and streams."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import sys
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from tests.factories import ServedScene, served_scene
from tests.server import running_server
from tests.sse_client import open_stream
from tests.writers import Writer, until

pytestmark = pytest.mark.server


async def sprintboard(database_url: str, *args: str) -> tuple[int, str, str]:
    """Run the `sprintboard` command (as installed) with DATABASE_URL set."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        *args,
        env={**os.environ, "DATABASE_URL": database_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


def events_per_task(path: Path) -> dict[int, int]:
    with closing(sqlite3.connect(path)) as connection:
        rows = connection.execute(
            "SELECT task_id, count(*) FROM task_event WHERE task_id IS NOT NULL GROUP BY task_id"
        )
        return dict(rows.fetchall())


async def test_a_backup_taken_under_writers_holds_every_acknowledged_change(
    tmp_path: Path,
) -> None:
    served: ServedScene = await served_scene(tmp_path / "live.db")
    headers = served.auth()
    answered = asyncio.Condition()
    writers = [Writer(t.id, answered) for t in served.scene.acme.tasks[:4]]
    stop = asyncio.Event()
    backup = tmp_path / "backups" / "sprintboard.db"
    backup.parent.mkdir()
    # Someone reading an old snapshot all along (a long report, say): no checkpoint can
    # pass it, so every change since lives in the -wal file only, where a copy of the
    # database file alone would miss it.
    old_reader = sqlite3.connect(tmp_path / "live.db")
    old_reader.execute("BEGIN")
    old_reader.execute("SELECT count(*) FROM task_event").fetchone()
    with running_server(served.database_url) as server, closing(old_reader):
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            running = [asyncio.create_task(w.run(http, headers, stop)) for w in writers]
            try:
                await until(answered, lambda: all(w.acknowledged >= 5 for w in writers), 30)
                before = {w.task_id: w.acknowledged for w in writers}
                status, out, err = await sprintboard(served.database_url, "backup", str(backup))
            finally:
                stop.set()
                await asyncio.gather(*running)
    assert status == 0, err
    assert str(backup) in out and "MB" in out and "checked" in out
    assert "integrity_check" in err  # it said what it was doing
    assert not list(backup.parent.glob("*.partial")) and not list(backup.parent.glob("*-wal"))
    with closing(sqlite3.connect(backup)) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    kept = events_per_task(backup)
    for task_id, acknowledged in before.items():
        assert kept[task_id] >= acknowledged + 1  # + its task_created

    # Restore: the server stopped, the copy put where the database was, started again.
    restored = tmp_path / "restored.db"
    shutil.copy(backup, restored)
    url = f"sqlite+aiosqlite:///{restored}"
    task = served.scene.acme.tasks[5].id
    with running_server(url) as again:
        async with httpx.AsyncClient(base_url=again.url, timeout=30) as http:
            assert (await http.get("/healthz")).status_code == 200
            async with open_stream(http, "/o/acme/events?nocompress=1", headers) as stream:
                await stream.next(wait=10)
                taken = await http.put(f"/api/v1/tasks/{task}/ownership", headers=headers)
                assert taken.status_code == 200
                event = await stream.next_event(wait=10)
    assert event.event == "ownership_taken"


async def test_backup_refuses_what_it_cannot_do_and_says_why(tmp_path: Path) -> None:
    served = await served_scene(tmp_path / "live.db")
    existing = tmp_path / "taken.db"
    existing.write_bytes(b"something")
    status, _, err = await sprintboard(served.database_url, "backup", str(existing))
    assert status == 1 and "--force" in err and existing.read_bytes() == b"something"
    status, _, _ = await sprintboard(served.database_url, "backup", str(existing), "--force")
    assert status == 0 and existing.read_bytes().startswith(b"SQLite format 3")

    status, _, err = await sprintboard(
        "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres", "backup", str(tmp_path / "x")
    )
    assert status == 1 and "pg_dump" in err and "Traceback" not in err
    status, _, err = await sprintboard(
        served.database_url, "backup", str(tmp_path / "no" / "such" / "folder.db")
    )
    assert status == 1 and "no folder" in err
