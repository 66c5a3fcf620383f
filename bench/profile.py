"""`python -m bench.profile`: where the server's CPU goes while it takes changes and while
streams open, sampled by py-spy.

The project runs on a fresh SQLite database under `py-spy record`; 8 clients alternate
take and release through the JSON API for a while, then (a second server) thousands of
streams open. Each sample is counted where the CPU was (its innermost Python frame),
grouped by whose code that is; C code counts with the Python frame that called it.
Start-up (imports) and idle thread-pool workers are left out.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import re
import shutil
import signal
import tempfile
from pathlib import Path

import uvloop

from bench import procs, runner, seed
from bench.crowd import Crowd
from bench.throughput import measure_project

# Whose code a frame is, by its file: first match wins.
GROUPS = (
    ("SQLAlchemy", re.compile(r"(^|/)sqlalchemy/")),
    ("SQLite (driver and our dialect)", re.compile(r"sqlite3|(^|/)app/db/sqlite\.py")),
    (
        "Quart, Hypercorn, Werkzeug, h11",
        re.compile(r"(^|/)(quart|hypercorn|werkzeug|h11|wsproto|h2)/"),
    ),
    ("Jinja2", re.compile(r"(^|/)jinja2/|\.html")),
    ("pydantic, quart-schema", re.compile(r"(^|/)(pydantic|pydantic_core|quart_schema)/")),
    ("logging", re.compile(r"(^|/)logging/")),
    ("prometheus-client", re.compile(r"(^|/)prometheus_client/")),
    ("asyncio, uvloop", re.compile(r"(^|/)asyncio/|uvloop")),
    ("our code (app/)", re.compile(r"(^|/)app/")),
)
_FRAME = re.compile(r"\(([^()]*):\d+\)$")


def summarize(raw: Path) -> dict[str, float]:
    """Share of the samples per group (innermost frame), from py-spy's raw output."""
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack:
            continue
        innermost = stack.rsplit(";", 1)[-1]
        if "_find_and_load" in stack or "concurrent/futures/thread.py" in innermost:
            continue  # start-up imports, and idle pool threads waiting for work: not load
        match = _FRAME.search(innermost)
        where = match.group(1) if match else innermost
        group = next((name for name, pattern in GROUPS if pattern.search(where)), None)
        counts[group or f"the rest: {where}"] += int(number)
    total = sum(counts.values()) or 1
    return {name: count / total for name, count in counts.most_common()}


def stop_profiled(server: procs.Server) -> None:
    """Stop the server under py-spy, and let py-spy write what it sampled: the server
    gets the SIGTERM (py-spy itself would exit without writing)."""
    for pid in procs.process_tree(server.pid)[1:]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    server.process.wait(timeout=60)


def py_spy(output: Path) -> list[str]:
    found = shutil.which("py-spy") or str(Path(procs.python()).parent / "py-spy")
    return [found, "record", "--format", "raw", "--rate", "200", "--output", str(output), "--"]


async def profile(work: Path, seconds: float, streams: int) -> dict[str, dict[str, float]]:
    scenario = await seed.prepare(f"sqlite+aiosqlite:///{work}/bench.db", tasks=8)
    found: dict[str, dict[str, float]] = {}
    changes = work / "changes.txt"
    with runner.project(work, scenario.database_url, under=py_spy(changes)) as server:
        result = await measure_project(server, scenario, "SQLite", clients=8, seconds=seconds)
        stop_profiled(server)
    print(f"take/release: {result.per_second:.0f}/s, {result.cpu_ms_per_request:.2f} ms CPU each")
    found["take/release"] = summarize(changes)
    opening = work / "streams.txt"
    with runner.project(work, scenario.database_url, under=py_spy(opening)) as server:
        crowd = Crowd(
            "127.0.0.1",
            server.port,
            "/o/acme/events",
            {"Authorization": f"Bearer {scenario.watcher_token}"},
        )
        took = await crowd.connect(streams)
        crowd.close()
        stop_profiled(server)
    print(f"{streams} streams opened in {took:.2f} s")
    found["opening streams"] = summarize(opening)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--streams", type=int, default=3000)
    parser.add_argument(
        "--keep", type=Path, help="copy py-spy's raw stacks here (for a flame graph tool)"
    )
    args = parser.parse_args()
    procs.raise_open_files_limit()
    with tempfile.TemporaryDirectory(prefix="sprintboard-profile-") as folder:
        found = uvloop.run(profile(Path(folder), args.seconds, args.streams))
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for raw in ("changes.txt", "streams.txt"):
                shutil.copy(Path(folder) / raw, args.keep / raw)
    for phase, shares in found.items():
        print(f"\n{phase}:")
        rest = sum(share for name, share in shares.items() if name.startswith("the rest"))
        for name, share in shares.items():
            if not name.startswith("the rest"):
                print(f"  {share * 100:5.1f} %  {name}")
        print(f"  {rest * 100:5.1f} %  the rest, of which most:")
        for name, share in [i for i in shares.items() if i[0].startswith("the rest")][:6]:
            print(f"  {'':9} {share * 100:5.1f} %  {name.removeprefix('the rest: ')}")


if __name__ == "__main__":
    main()
