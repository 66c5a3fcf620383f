"""`python -m bench.opening`: what opening thousands of streams costs the server, the
floor's and the project's, one server at a time: the wall time until every stream is
subscribed, the server's CPU per stream, and its memory per stream.

Both servers are CPU-bound while streams open, so the CPU per stream is the figure to
compare; the wall time follows it. Run it before and after a change to the request path
(the machine's speed drifts, so compare runs taken minutes apart).

    python -m bench.opening --streams 10000 --rounds 2
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import uvloop

from bench import procs, runner, seed
from bench.crowd import Crowd


async def open_streams(server: procs.Server, path: str, headers: dict[str, str], count: int) -> str:
    """Open `count` streams on `server`; a line saying what it took."""
    cpu, rss = server.cpu(), server.rss()
    crowd = Crowd("127.0.0.1", server.port, path, headers)
    took = await crowd.connect(count)
    used = server.cpu() - cpu
    opened = max(1, crowd.subscribed_count)
    kib = (server.rss() - rss) / 1024 / opened
    crowd.close()
    return (
        f"{crowd.subscribed_count}/{count} subscribed in {took:.2f} s, "
        f"server CPU {used / opened * 1000:.2f} ms per stream, {kib:.1f} KiB per stream"
        + (f", {crowd.failed} failed" if crowd.failed else "")
    )


async def measure(work: Path, count: int, rounds: int) -> None:
    scenario = await seed.prepare(f"sqlite+aiosqlite:///{work}/bench.db", tasks=8)
    path = f"/o/{scenario.org}/events"
    headers = {"Authorization": f"Bearer {scenario.watcher_token}"}
    for _ in range(rounds):
        with runner.floor(work) as server:
            print(f"floor:   {await open_streams(server, '/events', {}, count)}", flush=True)
        with runner.project(work, scenario.database_url) as server:
            await open_streams(server, path, headers, 1)  # warm: the first request imports
            print(f"project: {await open_streams(server, path, headers, count)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.opening", description=__doc__)
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    if procs.raise_open_files_limit() < args.streams + 1000:  # the server's and ours
        raise SystemExit(f"the open-file limit is too low for {args.streams} streams (ulimit -n)")
    with tempfile.TemporaryDirectory(prefix="sprintboard-opening-") as folder:
        uvloop.run(measure(Path(folder), args.streams, args.rounds))


if __name__ == "__main__":
    main()
