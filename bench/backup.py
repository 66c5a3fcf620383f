"""`python -m bench.backup`: do writers wait while `sprintboard backup` copies a big
database? The bench's seed, grown to ~200 MB (tasks with long descriptions), served by
a real server; four writers take and release tasks through the API the whole time, and
the backup runs in the middle. Printed: each writer request's longest and 99th
percentile time before, during and after the backup, and what the backup took.

    python -m bench.backup --megabytes 200
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

import httpx
import uvloop

from bench import runner, seed

WRITERS = 4
CALM_SECONDS = 5.0  # before and after the backup


def grow(path: Path, megabytes: int) -> None:
    """Add tasks with 8 KB descriptions to the benchmark's story until the file is
    about `megabytes` large (one transaction per thousand, as a team's years would)."""
    text = ("A long description of what this task is about. " * 170)[:8000]
    with closing(sqlite3.connect(path)) as connection:
        story, org = connection.execute(
            "SELECT id, org_id FROM story WHERE title = 'Benchmark'"
        ).fetchone()
        number = 0
        while path.stat().st_size < megabytes * 1_000_000:
            rows = [(org, story, f"Filler {number + n}", text) for n in range(1000)]
            connection.executemany(
                "INSERT INTO task (org_id, story_id, title, description, ac_refs, status, "
                "version, created_at, updated_at) VALUES (?, ?, ?, ?, '[]', 'available', 1, "
                "datetime('now'), datetime('now'))",
                rows,
            )
            connection.commit()
            number += len(rows)
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")


async def writer(
    http: httpx.AsyncClient, task: int, headers: dict[str, str], log: list[tuple[float, float]]
) -> None:
    """Take and release `task` until cancelled, noting (when it started, how long)."""
    holding = False
    while True:
        started = time.monotonic()
        method = "DELETE" if holding else "PUT"
        answer = await http.request(method, f"/api/v1/tasks/{task}/ownership", headers=headers)
        log.append((started, time.monotonic() - started))
        if answer.status_code in (200, 409):
            holding = not holding


def summary(waits: list[float]) -> str:
    if not waits:
        return "no requests"
    ordered = sorted(waits)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{len(ordered)} requests, p99 {p99 * 1000:.1f} ms, longest {ordered[-1] * 1000:.1f} ms"


async def measure(work: Path, megabytes: int) -> None:
    database = work / "bench.db"
    url = f"sqlite+aiosqlite:///{database}"
    scenario = await seed.prepare(url, tasks=WRITERS)
    print(f"growing the database to ~{megabytes} MB…", flush=True)
    grow(database, megabytes)
    print(f"database: {database.stat().st_size / 1e6:.0f} MB", flush=True)
    headers = {"Authorization": f"Bearer {scenario.actor_token}"}
    log: list[tuple[float, float]] = []
    with runner.project(work, url) as server:
        async with httpx.AsyncClient(base_url=server.base, timeout=60) as http:
            writers = [
                asyncio.create_task(writer(http, task, headers, log))
                for task in scenario.throughput_tasks[:WRITERS]
            ]
            await asyncio.sleep(CALM_SECONDS)  # the figures before: time is what is measured
            began = time.monotonic()
            backup = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "app",
                "backup",
                str(work / "copy.db"),
                env={**os.environ, "DATABASE_URL": url},
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
            said, _ = await backup.communicate()
            ended = time.monotonic()
            await asyncio.sleep(CALM_SECONDS)
            for task in writers:
                task.cancel()
            await asyncio.gather(*writers, return_exceptions=True)
    print(f"backup: {said.decode().strip()} (exit {backup.returncode})")
    print(f"before: {summary([w for s, w in log if s + w < began])}")
    print(f"during: {summary([w for s, w in log if s < ended and s + w > began])}")
    print(f"after:  {summary([w for s, w in log if s > ended])}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.backup", description=__doc__)
    parser.add_argument("--megabytes", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sprintboard-backup-") as folder:
        uvloop.run(measure(Path(folder), args.megabytes))


if __name__ == "__main__":
    main()
