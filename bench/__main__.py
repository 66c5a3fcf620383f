"""`python -m bench [--quick | --smoke]`: run the benchmarks, print each figure as it
comes, and write docs/benchmarks.md with its plot (not for --smoke).

Every measurement starts fresh server processes; the floor is measured in the same run,
right beside the project, because this machine is shared and absolute times drift.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import uvloop

from bench import bigboard, presence, procs, report, runner, seed, storm
from bench.fanout import FanoutResult, FloorTarget, ProjectTarget, measure, render_cost
from bench.throughput import ThroughputResult, measure_floor, measure_project

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Profile:
    name: str
    sizes: tuple[int, ...]  # subscriber counts, project and floor
    changes: int
    variant_size: int  # subscribers for the Redis and two-worker runs
    presence_size: int  # people joining at once in the presence run
    storm_size: int  # open boards through a restart in the reconnect-storm run
    seconds: float  # mutation throughput duration
    drop_seconds: float
    postgres: bool
    write_docs: bool
    board_sizes: tuple[int, ...] = (50, 500, 2_000)  # tasks in the big-board runs
    board_rounds: int = 5


PROFILES = {
    "full": Profile("full", (1_000, 5_000, 10_000), 20, 5_000, 1_000, 5_000, 10.0, 5.0, True, True),
    "quick": Profile(
        "quick", (1_000,), 10, 500, 1_000, 1_000, 2.0, 1.5, True, False, (50, 2_000), 2
    ),
    "smoke": Profile("smoke", (200,), 5, 200, 50, 100, 2.0, 2.0, False, False, (50,), 1),
}
CLIENTS = 8
DROP_EVERY = 7  # hang up on every 7th request in the drop runs


def say(message: str) -> None:
    print(message, flush=True)


def show_fanout(result: FanoutResult) -> None:
    say(
        f"  {result.label:<22} {result.subscribers:>6} subs: "
        f"{result.delivered}/{result.expected} delivered, "
        f"p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, max {result.max_ms:.1f} ms, "
        f"connected in {result.connect_seconds:.2f} s, {result.kib_per_stream:.1f} KiB/stream, "
        f"{result.cpu_us_per_delivery:.0f} µs CPU/delivery, "
        f"{result.wire_bytes_per_delivery:,.0f} B on the wire/delivery, "
        + (
            f"render {result.render_ms_per_event:.2f} ms/event, "
            if result.render_ms_per_event == result.render_ms_per_event  # not NaN
            else ""
        )
        + f"actor p50 {result.actor_p50_ms:.1f} ms max {result.actor_max_ms:.1f} ms"
        + ("" if result.ok else f"  PROBLEM: {_problems(result)}")
    )


def show_throughput(result: ThroughputResult) -> None:
    say(
        f"  {result.label:<32} {result.per_second:>7.0f} req/s "
        f"({result.completed} in {result.seconds:.0f} s, statuses {result.statuses}, "
        f"server {result.cpu_ms_per_request:.2f} ms CPU per request, "
        f"{result.server_busy:.0%} of a core"
        + (f", {result.dropped} dropped" if result.dropped else "")
        + ")"
        + ("" if result.ok else f"  PROBLEM: {_problems(result)}")
    )


def show_presence(result: presence.PresenceResult) -> None:
    say(
        f"  {result.viewers:>5} streams, {result.people:>5} people: "
        f"{result.subscribed} subscribed "
        f"in {result.connect_seconds:.2f} s, {result.notices_sent} notices sent, "
        f"{result.notices_per_stream:.1f} per stream over {result.seconds:.1f} s, "
        f"{result.kib_per_stream:.1f} KiB per stream, {result.up_to_date} up to date, "
        f"API {result.api_viewers}, server CPU {result.cpu_ms:.0f} ms "
        f"({result.cpu_us_per_join:.0f} µs per join), "
        f"actor p50 {result.actor_p50_ms:.1f} ms max {result.actor_max_ms:.1f} ms"
        + ("" if result.ok else f"  PROBLEM: {json.dumps(result.as_dict(), default=str)[:800]}")
    )


def _problems(result: FanoutResult | ThroughputResult) -> str:
    data = result.as_dict()
    keys = (
        "refused",
        "connect_errors",
        "dropped_streams",
        "lost",
        "actor_errors",
        "errors",
        "history_breaks",
        "server_errors",
    )
    found = {k: data.get(k) for k in keys if data.get(k)}
    if isinstance(result, FanoutResult) and result.lost:
        found["lost"] = result.lost
    return json.dumps(found)[:2000]


async def fanout_pair(
    work: Path, scenario: seed.Scenario, size: int, changes: int, message: bytes
) -> tuple[FanoutResult, FanoutResult]:
    with runner.project(work, scenario.database_url) as server:
        project = await measure(ProjectTarget(server, scenario), size, changes=changes)
    project.render_ms_per_event = render_cost(server.log_text())
    show_fanout(project)
    with runner.floor(work) as server:
        floor = await measure(FloorTarget(server, message), size, changes=changes)
    show_fanout(floor)
    return project, floor


async def run(
    profile: Profile, work: Path, results: dict[str, list[dict[str, object]]], part: str = "all"
) -> bool:
    ok = True
    say(f"preparing a SQLite database in {work} …")
    sqlite = await seed.prepare(f"sqlite+aiosqlite:///{work}/bench.db", tasks=CLIENTS)

    if part in ("all", "fanout"):
        ok &= await fanout_runs(work, sqlite, profile, results)
    if part in ("all", "presence"):
        ok &= await presence_runs(work, sqlite, profile, results)
    if part in ("all", "storm"):
        ok &= await storm_run(work, sqlite, profile, results)
    if part in ("all", "throughput"):
        ok &= await throughput_runs(work, sqlite, profile, results, variants=part == "all")
    if part in ("all", "bigboard"):
        say(f"big boards: Bigco's sprint of {', '.join(map(str, profile.board_sizes))} tasks")
        boards = await bigboard.measure(work, profile.board_sizes, profile.board_rounds)
        results["bigboard"] = [board.as_dict() for board in boards]
    return ok


async def fanout_runs(
    work: Path, sqlite: seed.Scenario, profile: Profile, results: dict[str, list[dict[str, object]]]
) -> bool:
    ok = True
    with runner.project(work, sqlite.database_url) as server:
        message = await ProjectTarget(server, sqlite).sample_message()
    say(f"one event message is {len(message)} bytes on the wire")
    results["message_bytes"] = [{"bytes": len(message)}]
    say("fan-out: project against the floor")
    for size in profile.sizes:
        project, floor = await fanout_pair(work, sqlite, size, profile.changes, message)
        results["fanout"] += [project.as_dict(), floor.as_dict()]
        ok &= project.ok and floor.ok
        if size in (min(profile.sizes), max(profile.sizes)):
            compressed = await compressed_run(work, sqlite, size, profile.changes)
            results["compressed"] += [project.as_dict(), compressed.as_dict()]
            ok &= compressed.ok
    return ok


async def compressed_run(
    work: Path, scenario: seed.Scenario, size: int, changes: int
) -> FanoutResult:
    """The same fan-out with every stream asking for gzip, as browsers do."""
    with runner.project(work, scenario.database_url) as server:
        target = ProjectTarget(server, scenario, "project, gzip", gzip=True)
        result = await measure(target, size, changes=changes)
    show_fanout(result)
    return result


async def presence_runs(
    work: Path, sqlite: seed.Scenario, profile: Profile, results: dict[str, list[dict[str, object]]]
) -> bool:
    size = profile.presence_size
    say(f"presence: {size} people open the sprint's board at once while changes go on")
    tokens = await seed.viewers(sqlite.database_url, size)
    ok = True
    for who in (tokens, [sqlite.watcher_token]):
        with runner.project(work, sqlite.database_url) as server:
            result = await presence.measure(server, sqlite, who, size)
        result.notices_sent = presence.notices_sent(server.log_text())
        show_presence(result)
        results["presence"].append(result.as_dict())
        ok &= result.ok
    return ok


async def storm_run(
    work: Path, sqlite: seed.Scenario, profile: Profile, results: dict[str, list[dict[str, object]]]
) -> bool:
    size = profile.storm_size
    say(f"reconnect storm: {size} open boards through a restart (SIGTERM) while changes go on")
    result = await storm.measure(work, sqlite, size)
    say(
        f"  {result.reconnected}/{result.streams} back, every one caught up "
        f"{result.caught_up_seconds:.1f} s after SIGTERM (new server answering after "
        f"{result.restart_seconds:.1f} s), {result.events} events, {result.missed} missed, "
        f"{result.repeats} twice, retries {result.retry_min_ms}–{result.retry_max_ms} ms, "
        f"actor during the storm p50 {result.actor_p50_ms:.1f} ms max {result.actor_max_ms:.1f} ms"
        f" ({result.actor_during} changes, {result.actor_refused} refused while down)"
        + (
            ""
            if result.ok
            else "  PROBLEM: "
            + json.dumps(_without(result.as_dict(), "caught_up_curve"), default=str)
        )
    )
    results["storm"].append(result.as_dict())
    return result.ok


def _without(row: dict[str, object], key: str) -> dict[str, object]:
    return {k: v for k, v in row.items() if k != key}


async def throughput_runs(
    work: Path,
    sqlite: seed.Scenario,
    profile: Profile,
    results: dict[str, list[dict[str, object]]],
    *,
    variants: bool,
) -> bool:
    ok = True

    say(f"mutation throughput: take/release from {CLIENTS} clients for {profile.seconds:.0f} s")
    with runner.floor(work) as server:
        floor_rate = await measure_floor(server, clients=CLIENTS, seconds=profile.seconds)
    show_throughput(floor_rate)
    runs = [floor_rate, *await take_and_release(work, sqlite, "SQLite", profile)]
    if profile.postgres:
        async with seed.postgres_database() as url:
            pg = await seed.prepare(url, tasks=CLIENTS)
            runs += await take_and_release(work, pg, "PostgreSQL", profile)
            if variants:
                ok &= await compare_shapes(work, pg, profile, results)
    elif variants:
        ok &= await compare_shapes(work, sqlite, profile, results)
    results["throughput"] = [r.as_dict() for r in runs]
    ok &= all(r.ok for r in runs)
    return ok


async def take_and_release(
    work: Path, scenario: seed.Scenario, database: str, profile: Profile
) -> list[ThroughputResult]:
    """Take/release at full speed, then again with requests dropped mid-flight."""
    runs = []
    with runner.project(work, scenario.database_url) as server:
        for label, seconds, drop_every in (
            (database, profile.seconds, 0),
            (f"{database}, every {DROP_EVERY}th request dropped", profile.drop_seconds, DROP_EVERY),
        ):
            runs.append(
                await measure_project(
                    server, scenario, label, clients=CLIENTS, seconds=seconds, drop_every=drop_every
                )
            )
            show_throughput(runs[-1])
    return runs


async def compare_shapes(
    work: Path,
    scenario: seed.Scenario,
    profile: Profile,
    results: dict[str, list[dict[str, object]]],
) -> bool:
    """In-process against Redis fan-out; one worker against two (with Redis); and the
    one-box scale-out path (two workers, Redis) with the most streams of the profile."""
    database = "PostgreSQL" if scenario.database_url.startswith("postgresql") else "SQLite"
    say(f"fan-out and throughput on {database}: in-process, Redis, two workers with Redis")
    ok = True
    with runner.redis_server() as redis_url:
        shapes = [
            (f"{database}, in-process", None, 1, profile.variant_size),
            (f"{database}, Redis, 1 worker", redis_url, 1, profile.variant_size),
            (f"{database}, Redis, 2 workers", redis_url, 2, profile.variant_size),
        ]
        if max(profile.sizes) > profile.variant_size:
            shapes.append((f"{database}, Redis, 2 workers", redis_url, 2, max(profile.sizes)))
        for label, redis, workers, size in shapes:
            with runner.project(
                work, scenario.database_url, redis_url=redis, workers=workers
            ) as server:
                result = await measure(
                    ProjectTarget(server, scenario, label), size, changes=profile.changes
                )
                show_fanout(result)
                results["variants"].append(result.as_dict())
                ok &= result.ok
                if size != profile.variant_size:
                    continue  # the shape's take/release rate was measured above
                rate = await measure_project(
                    server, scenario, label, clients=CLIENTS, seconds=profile.seconds / 2
                )
                show_throughput(rate)
                results["variant_throughput"].append(rate.as_dict())
                ok &= rate.ok
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="a one-minute version")
    mode.add_argument("--smoke", action="store_true", help="tiny; for CI (no timings judged)")
    parser.add_argument(
        "--part",
        choices=("all", "fanout", "presence", "storm", "throughput", "bigboard"),
        default="all",
        help="run one part only; it prints its figures (and --json) but writes no "
        "document: the document's verdicts need every part",
    )
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument(
        "--render",
        type=Path,
        metavar="RESULTS",
        help="measure nothing: rewrite the document from a results file (docs/benchmarks.json)",
    )
    parser.add_argument("--docs", type=Path, default=ROOT / "docs", help="where benchmarks.md goes")
    args = parser.parse_args()
    profile = PROFILES["quick" if args.quick else "smoke" if args.smoke else "full"]
    if args.render:
        saved = json.loads(args.render.read_text())
        written = report.write(
            saved["results"],
            args.docs,
            profile=saved["profile"],
            elapsed=saved["elapsed"],
            when=saved["when"],
            commit=saved["commit"],
        )
        say("wrote " + ", ".join(map(str, written)))
        return
    limit = procs.raise_open_files_limit()
    if limit < max(profile.sizes) + 1000:  # the server and this process: each its own
        sys.exit(f"the open-file limit is {limit}; raise it (ulimit -n) to run this profile")

    started = time.perf_counter()
    results: dict[str, list[dict[str, object]]] = {
        "fanout": [],
        "throughput": [],
        "variants": [],
        "variant_throughput": [],
        "presence": [],
        "storm": [],
        "compressed": [],
        "bigboard": [],
    }
    with tempfile.TemporaryDirectory(prefix="sprintboard-bench-") as folder:
        try:
            ok = uvloop.run(run(profile, Path(folder), results, args.part))
        except BaseException:
            for log in sorted(Path(folder).glob("*.log")):
                print(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}", file=sys.stderr)
            raise
    elapsed = time.perf_counter() - started
    say(f"done in {elapsed:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    if profile.write_docs and args.part == "all":
        saved = {
            "profile": profile.name,
            "elapsed": elapsed,
            "when": report.now(),
            "commit": report.current_commit(),
            "results": results,
        }
        args.docs.mkdir(parents=True, exist_ok=True)
        (args.docs / "benchmarks.json").write_text(json.dumps(saved, indent=1, default=str))
        written = report.write(
            results,
            args.docs,
            profile=profile.name,
            elapsed=elapsed,
            when=saved["when"],
            commit=saved["commit"],
        )
        say(
            "wrote "
            + ", ".join(
                str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p) for p in written
            )
        )
    if not ok:
        say("FAILED: errors or lost events (see PROBLEM lines above)")
        sys.exit(1)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
