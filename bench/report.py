"""docs/benchmarks.md and docs/benchmarks.png, from one run's results.

The tables and the verdicts against the targets are generated; the account of what
each optimization bought is hand-written in bench/findings.md and included as it is.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
import statistics
import subprocess
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.stats import percentile

HERE = Path(__file__).resolve().parent
Row = dict[str, Any]


def write(
    results: dict[str, list[Row]],
    docs: Path,
    *,
    profile: str,
    elapsed: float,
    when: str | None = None,
    commit: str | None = None,
) -> list[Path]:
    """Write the page and its plot; `when` and `commit` say when and what was measured."""
    docs.mkdir(parents=True, exist_ok=True)
    plot = docs / "benchmarks.png"
    draw(results["fanout"], plot)
    written = [plot]
    if results.get("storm"):
        written.append(docs / "benchmarks-storm.png")
        draw_storm(results["storm"][0], written[-1])
    page = docs / "benchmarks.md"
    page.write_text(
        markdown(
            results,
            profile=profile,
            elapsed=elapsed,
            plot=plot.name,
            when=when or now(),
            commit=commit or current_commit(),
        )
    )
    return [page, *written]


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


# -- figures ------------------------------------------------------------------------


def _ms(value: float) -> str:
    if value is None or math.isnan(value):
        return "–"
    return f"{value:,.2f}" if value < 10 else f"{value:,.1f}"


def _x(value: float, floor: float) -> str:
    if not floor or math.isnan(value) or math.isnan(floor):
        return "–"
    return f"{value / floor:.2f}×"


def _kb(row: Row) -> str:
    return f"{row['kib_per_stream'] * 1.024:.1f}"


def _pairs(rows: Sequence[Row], label: str, against: str) -> list[tuple[Row, Row]]:
    """Each row labelled `label`, with the row labelled `against` of the same size (the
    two were measured in the same run)."""
    others = {r["subscribers"]: r for r in rows if r["label"] == against}
    return [
        (r, others[r["subscribers"]])
        for r in rows
        if r["label"] == label and r["subscribers"] in others
    ]


def _delivered(row: Row) -> str:
    share = row["share_delivered"] * 100
    return f"{row['delivered']:,}/{row['expected']:,} ({share:.1f} %)"


def fanout_table(fanout: Sequence[Row]) -> str:
    lines = [
        "| subscribers | server | delivered | p50 ms | p99 ms | max ms | p99 vs floor "
        "| all connected in | memory per stream | CPU per delivery | actor's answer p50 / max |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for project, floor in _pairs(fanout, "project", "floor"):
        for row in (project, floor):
            ratio = _x(row["p99_ms"], floor["p99_ms"]) if row is project else "1.00×"
            lines.append(
                f"| {row['subscribers']:,} | {row['label']} | {_delivered(row)} "
                f"| {_ms(row['p50_ms'])} | {_ms(row['p99_ms'])} | {_ms(row['max_ms'])} | {ratio} "
                f"| {row['connect_seconds']:.2f} s | {row['kib_per_stream']:.1f} KiB "
                f"| {row['cpu_us_per_delivery']:.0f} µs "
                f"| {_ms(row['actor_p50_ms'])} / {_ms(row['actor_max_ms'])} ms |"
            )
    return "\n".join(lines)


def compressed_table(rows: Sequence[Row]) -> str:
    lines = [
        "| subscribers | stream | delivered | bytes on the wire per delivery | of plain "
        "| CPU per delivery | p50 / p99 ms | all connected in |",
        "|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for plain, gzip in _pairs(rows, "project", "project, gzip"):
        for row in (plain, gzip):
            share = row["wire_bytes_per_delivery"] / (plain["wire_bytes_per_delivery"] or math.nan)
            lines.append(
                f"| {row['subscribers']:,} | {'gzip' if row is gzip else 'plain'} "
                f"| {_delivered(row)} | {row['wire_bytes_per_delivery']:,.0f} B "
                f"| {share:.0%} "
                f"| {row['cpu_us_per_delivery']:.0f} µs "
                f"| {_ms(row['p50_ms'])} / {_ms(row['p99_ms'])} | {row['connect_seconds']:.2f} s |"
            )
    return "\n".join(lines)


def throughput_table(runs: Sequence[Row]) -> str:
    floor = next((r["per_second"] for r in runs if r["label"] == "floor"), math.nan)
    lines = [
        "| server | requests/s | vs bare POST | server CPU per request | answers "
        "| dropped mid-flight | errors | broken histories |",
        "|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for row in runs:
        answers = ", ".join(f"{n:,}× {status}" for status, n in sorted(row["statuses"].items()))
        cpu = row.get("cpu_ms_per_request", math.nan)
        lines.append(
            f"| {row['label']} | {row['per_second']:,.0f} | {_x(row['per_second'], floor)} "
            f"| {_ms(cpu)} ms | {answers} | {row['dropped']:,} "
            f"| {row['errors'] + len(row['server_errors'])} | {row.get('history_breaks', 0)} |"
        )
    return "\n".join(lines)


def variants_table(fanout: Sequence[Row], rates: Sequence[Row]) -> str:
    lines = [
        "| shape | subscribers | delivered | p50 ms | p99 ms | all connected in "
        "| memory per stream | CPU per delivery | take/release per s |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    rate = {r["label"]: r["per_second"] for r in rates}
    for row in fanout:
        lines.append(
            f"| {row['label']} | {row['subscribers']:,} | {_delivered(row)} | {_ms(row['p50_ms'])} "
            f"| {_ms(row['p99_ms'])} | {row['connect_seconds']:.2f} s "
            f"| {row['kib_per_stream']:.1f} KiB "
            f"| {row['cpu_us_per_delivery']:.0f} µs | {rate.get(row['label'], math.nan):,.0f} |"
        )
    return "\n".join(lines)


def storm_table(rows: Sequence[Row]) -> str:
    lines = [
        "| open boards | back and caught up | new server answering | every board caught up "
        "| events | missed | twice | retries spread over | actor p50 / max meanwhile |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['streams']:,} | {row['reconnected']:,} | {row['restart_seconds']:.1f} s "
            f"| {row['caught_up_seconds']:.1f} s | {row['events']} | {row['missed']} "
            f"| {row['repeats']} | {row['retry_min_ms']:,}–{row['retry_max_ms']:,} ms "
            f"| {_ms(row['actor_p50_ms'])} / {_ms(row['actor_max_ms'])} ms |"
        )
    return "\n".join(lines)


def presence_table(rows: Sequence[Row]) -> str:
    lines = [
        "| streams | people | subscribed in | notices sent | per stream | received per stream "
        "| everyone up to date | server CPU | actor p50 / max | problems |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        problems = (
            "none"
            if row["ok"]
            else f"{row['dropped_streams']} fell behind, {row['actor_errors']} actor errors, "
            f"{len(row['server_errors'])} server errors"
        )
        lines.append(
            f"| {row['viewers']:,} | {row['people']:,} | {row['connect_seconds']:.2f} s "
            f"| {row['notices_sent']} in {row['seconds']:.1f} s | {row['notices_per_stream']:.1f} "
            f"| {row['kib_per_stream']:.0f} KiB | {row['up_to_date']:,} "
            f"| {row['cpu_ms']:,.0f} ms "
            f"| {_ms(row['actor_p50_ms'])} / {_ms(row['actor_max_ms'])} ms | {problems} |"
        )
    return "\n".join(lines)


# -- targets --------------------------------------------------------------------------


def verdicts(results: dict[str, list[Row]]) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met?) for each target this run can judge."""
    checks: list[tuple[str, str, bool | None]] = []
    pairs = {p["subscribers"]: (p, f) for p, f in _pairs(results["fanout"], "project", "floor")}
    if 1_000 in pairs:
        p, f = pairs[1_000]
        checks.append(("1,000 subscribers: every event delivered", _delivered(p), p["lost"] == 0))
        checks.append(
            (
                "1,000 subscribers: p99 ≤ 1.2 × floor and < 60 ms",
                f"{_ms(p['p99_ms'])} ms, {_x(p['p99_ms'], f['p99_ms'])} floor",
                p["p99_ms"] <= 1.2 * f["p99_ms"] and p["p99_ms"] < 60,
            )
        )
    if 10_000 in pairs:
        p, f = pairs[10_000]
        checks += [
            ("10,000 subscribers: every event delivered", _delivered(p), p["lost"] == 0),
            (
                "10,000 subscribers: p99 ≤ 1.5 × floor",
                f"{_ms(p['p99_ms'])} ms, {_x(p['p99_ms'], f['p99_ms'])} floor",
                p["p99_ms"] <= 1.5 * f["p99_ms"],
            ),
            (
                "10,000 subscribers: ≤ 32 KB of server memory per stream",
                f"{_kb(p)} KB (floor {_kb(f)} KB)",
                p["kib_per_stream"] * 1.024 <= 32,  # KiB measured, KB (1,000 bytes) asked
            ),
            (
                "10,000 subscribers: all connected within 5 s",
                f"{p['connect_seconds']:.1f} s (floor {f['connect_seconds']:.1f} s)",
                p["connect_seconds"] <= 5,
            ),
            (
                "10,000 subscribers: all connected within 1.2 × the floor's time",
                f"{p['connect_seconds']:.1f} s, {_x(p['connect_seconds'], f['connect_seconds'])} "
                "floor",
                p["connect_seconds"] <= 1.2 * f["connect_seconds"],
            ),
            (
                "10,000 subscribers: the actor's request answered within 50 ms",
                f"p50 {_ms(p['actor_p50_ms'])} ms, max {_ms(p['actor_max_ms'])} ms",
                p["actor_max_ms"] <= 50,
            ),
        ]
    runs = {r["label"]: r for r in results["throughput"]}
    if "SQLite" in runs and "floor" in runs:
        sqlite, floor = runs["SQLite"], runs["floor"]
        checks.append(
            (
                "SQLite: ≥ 1,000 changes/s and ≥ ½ the bare-POST floor",
                f"{sqlite['per_second']:,.0f}/s, "
                f"{_x(sqlite['per_second'], floor['per_second'])} floor",
                sqlite["per_second"] >= 1000 and sqlite["per_second"] >= floor["per_second"] / 2,
            )
        )
        checks.append(
            (
                "SQLite: take/release ≥ 0.25 × the bare-POST floor",
                f"{_x(sqlite['per_second'], floor['per_second'])} floor "
                f"({sqlite['cpu_ms_per_request']:.2f} ms of server CPU each, floor "
                f"{floor['cpu_ms_per_request']:.2f} ms)",
                sqlite["per_second"] >= floor["per_second"] / 4,
            )
        )
    dropped = [r for r in results["throughput"] if r["dropped"]]
    if dropped:
        checks.append(
            (
                "zero errors with requests dropped mid-flight",
                "; ".join(
                    f"{r['label']}: {r['errors'] + len(r['server_errors'])} errors, "
                    f"{r['history_breaks']} broken histories"
                    for r in dropped
                ),
                all(r["ok"] for r in dropped),
            )
        )
    for row in results.get("storm", []):
        checks.append(
            (
                f"reconnect storm ({row['streams']:,} boards): every board back, "
                "0 events missed, none twice",
                f"{row['reconnected']:,} back, {row['missed']} missed, {row['repeats']} twice, "
                f"all caught up {row['caught_up_seconds']:.1f} s after SIGTERM",
                row["ok"],
            )
        )
    for plain, gzip in _pairs(results.get("compressed", []), "project", "project, gzip"):
        share = gzip["wire_bytes_per_delivery"] / (plain["wire_bytes_per_delivery"] or math.nan)
        checks += [
            (
                f"compressed streams, {gzip['subscribers']:,} subscribers: bytes on the "
                "wire per delivered event ≤ 40 % of the plain stream's, every event once",
                f"{gzip['wire_bytes_per_delivery']:,.0f} B against "
                f"{plain['wire_bytes_per_delivery']:,.0f} B ({share:.0%}); {_delivered(gzip)}",
                share <= 0.40 and gzip["ok"],
            ),
            (
                f"compressed streams, {gzip['subscribers']:,} subscribers: CPU per delivery "
                "no higher than the plain stream's",
                f"{gzip['cpu_us_per_delivery']:.0f} µs against "
                f"{plain['cpu_us_per_delivery']:.0f} µs",
                gzip["cpu_us_per_delivery"] <= plain["cpu_us_per_delivery"],
            ),
        ]
    people = next((r for r in results.get("presence", []) if r["people"] > 1), None)
    if people is not None:
        checks.append(
            (
                f"presence: {people['viewers']:,} people joining at once, no stream behind, "
                "everyone up to date, ≤ 1 notice per second",
                f"{people['dropped_streams']} behind, {people['up_to_date']:,} up to date, "
                f"{people['notices_sent']} notices in {people['seconds']:.1f} s",
                people["ok"] and people["notices_sent"] <= math.ceil(people["seconds"]) + 1,
            )
        )
    return checks


def _median(figure: Row) -> float:
    samples = figure["samples"]
    return statistics.median(samples) if samples else math.nan


def board_verdicts(boards: Sequence[Row]) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met?) for the largest board measured."""
    if not boards:
        return []
    big = max(boards, key=lambda b: b["tasks"])
    n = f"{big['tasks']:,} tasks"
    checks: list[tuple[str, str, bool | None]] = []
    for view in ("story", "status"):
        cpu = _median(big["page_cpu_ms"][view])
        checks.append(
            (f"{n}, {view} view: board page ≤ 150 ms server CPU", f"{cpu:.0f} ms", cpu <= 150)
        )
        size = big["html_bytes"][view]
        checks.append((f"{n}, {view} view: HTML ≤ 1.5 MB", f"{size / 1e6:.2f} MB", size <= 1.5e6))
        dom = big["dom"][view]
        checks.append((f"{n}, {view} view: ≤ 25,000 DOM elements", f"{dom:,}", dom <= 25_000))
        ready = _median(big["interactive_ms"][view])
        checks.append((f"{n}, {view} view: interactive ≤ 1.5 s", f"{ready:.0f} ms", ready <= 1_500))
    shown = _median(big["own_shown_ms"])
    checks.append((f"{n}: own take, card shown ≤ 100 ms", f"{shown:.0f} ms", shown <= 100))
    for view in ("status", "story"):
        settled = _median(big["own_settled_ms"][view])
        checks.append(
            (f"{n}, {view} view: own take settled ≤ 300 ms", f"{settled:.0f} ms", settled <= 300)
        )
    remote = big["remote_ms"]
    p95 = percentile(remote, 0.95)
    checks.append((f"{n}: someone else's change seen, p95 ≤ 250 ms", f"{p95:.0f} ms", p95 <= 250))
    take = big["message_bytes"].get("take", 0)
    checks.append((f"{n}: a take's event message ≤ 2 KB", f"{take:,} bytes", take <= 2_000))
    return checks


def board_table(boards: Sequence[Row]) -> str:
    """One line per figure, one column per board size."""
    if not boards:
        return "(not measured in this run)"
    header = "| | " + " | ".join(f"{b['tasks']:,} tasks" for b in boards) + " |"
    lines = [header, "|---|" + "---:|" * len(boards)]
    names = [name for name, _value in boards[0]["rows"]]
    for i, name in enumerate(names):
        lines.append(f"| {name} | " + " | ".join(b["rows"][i][1] for b in boards) + " |")
    return "\n".join(lines)


def targets_table(results: dict[str, list[Row]]) -> str:
    lines = ["| target | measured | met |", "|---|---|:---:|"]
    for target, measured, met in verdicts(results) + board_verdicts(results.get("bigboard", [])):
        lines.append(f"| {target} | {measured} | {'yes' if met else '**no**'} |")
    return "\n".join(lines)


# -- the page -------------------------------------------------------------------------


def _message_sizes(results: dict[str, list[Row]]) -> str:
    """What one event's message weighs, by kind (from the big-board runs)."""
    boards = results.get("bigboard", [])
    if not boards:
        return ""
    sizes = ", ".join(
        f"{b['tasks']:,} tasks: take {b['message_bytes'].get('take', 0):,}, "
        f"complete {b['message_bytes'].get('complete', 0):,}"
        for b in boards
    )
    return (
        "**Bytes per message** (plain, as a stream without gzip receives it), by board "
        f"size: {sizes}. A take carries the card and the counts; a complete also the "
        "header and its burndown, whose figures it moved."
    )


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        memory = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    except OSError:
        memory = math.nan
    versions = ", ".join(
        f"{name} {metadata.version(name)}"
        for name in ("quart", "hypercorn", "uvloop", "sqlalchemy", "asyncpg", "redis")
    )
    return (
        f"{os.cpu_count()} × {cpu}, {memory:.0f} GiB, {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; {versions}"
    )


def current_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=HERE,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def markdown(
    results: dict[str, list[Row]],
    *,
    profile: str,
    elapsed: float,
    plot: str,
    when: str,
    commit: str,
) -> str:
    message = results.get("message_bytes", [{"bytes": 0}])[0]["bytes"]
    findings = (HERE / "findings.md").read_text().strip()
    return f"""# Benchmarks

*Generated by `make bench` ({profile} profile, {elapsed:.0f} s) on {when}, commit `{commit}`.
Do not edit by hand: change `bench/` (the numbers and tables) or `bench/findings.md`
(the account below them) and run `make bench` again.*

**Machine:** {machine()}. The load generator runs on the same machine and shares its
two cores with the server it measures; every figure below includes that.

**The floor** (`bench/floor.py`) is the least a Quart-on-Hypercorn app can do for the
same job: one queue per subscriber, the request body put on every queue as it is, a
POST that does nothing. It is started the same way, measured in the same run, right
after the project, with a message of exactly the project's size ({message:,} bytes).

## Against the targets

{targets_table(results)}

## Fan-out

N subscribers hold `GET /o/acme/events` open (one API token, a viewer), then
{_changes(results)} changes, 200 ms apart, go through the JSON API (take, release, take, …).
Latency is from sending the change to a subscriber reading its `id:` line, over every
(change, subscriber) pair; "memory per stream" is the growth of the server's resident
memory while the streams opened, divided by their number; "CPU per delivery" is the
server's CPU time (user + system) during the changes divided by the deliveries.

![Delivery latency against subscribers, project and floor]({plot})

{fanout_table(results["fanout"])}

{_message_sizes(results)}

## Compressed streams

The same fan-out with every stream sending `Accept-Encoding: gzip`, as browsers do, on a
fresh server right after the plain run of the same size: each frame is deflated once
per instance and the same bytes go to every stream (`app/events/compress.py`). "Bytes on
the wire" counts everything the streams received while the changes went out (HTTP
chunk lines and heartbeats included), per delivery.

{compressed_table(results.get("compressed", []))}

## Mutation throughput

{8} clients, each on its own keep-alive connection and its own task, alternate take and
release through the JSON API (bearer token) as fast as they are answered. The floor is a
POST that does nothing, driven by the same client. In the "dropped" runs every 7th
request is sent and the connection cut at once; a 409 after such a drop, until an
answer succeeds, is expected (the dropped change may have happened, and on PostgreSQL
may commit only after the next request was answered), anything else counts as an error, and
afterwards every task's history must be an unbroken chain (each event starts from the
state the previous one left). "Server CPU" is the app's own processes: SQLite works
inside them, while PostgreSQL's (and Redis's) CPU is not counted, so the two databases'
figures are not comparable.

{throughput_table(results["throughput"])}

## In-process against Redis, one worker against two

The same fan-out and a shorter take/release run, on the same database, with the
in-process broker, with Redis, and with two Hypercorn workers sharing the port through
Redis.

{variants_table(results["variants"], results["variant_throughput"])}

## Presence: a crowd joins

{_presence_size(results)} people open the sprint's board (`GET /o/acme/events?sprint=…`, each
with their own token) as fast as the server lets them, while the actor takes and releases
a task every 100 ms, 30 times. Every join changes who is looking, so presence notices go
out, folded to at most one a second for the sprint; each names at most 50 people and counts
the rest. Then the same number of tabs of *one* person do the same on a fresh server: the
same requests, queries and streams, but presence never changes after the first. "Received
per stream" counts every byte (the actor's events too); "server CPU" is from the first
connection until every stream has the last notice.

{presence_table(results.get("presence", []))}

## A deploy: the reconnect storm

{_storm_size(results)} boards hold `GET /o/acme/events` open; the actor changes a task every
200 ms; the server gets SIGTERM and a new one starts on the same port (its start-up takes
most of the gap); every board comes back the way EventSource does: after the `retry:` the
server sent it (spread over 0.5–5 s on shutdown), again after the same delay while nobody
answers, with `Last-Event-ID`. "Caught up" is when a board has reconnected and received
every event committed before it reconnected (by the event log's own timestamps); the
actor's answer times are those of its changes from the new server's first answer until
every board had caught up; changes tried while no server ran are not counted.

{storm_table(results.get("storm", []))}

![Boards caught up after the restart, over time](benchmarks-storm.png)

## Big boards

Bigco's sprint (`sprintboard demo --big N`: 20 stories, N tasks over every status) at each
size, on SQLite, a fresh production server each. Medians, min–max in brackets. Server CPU
is the server process's CPU time per board page (its cards already rendered once); HTML
is the page's bytes; DOM elements and "interactive" (navigation until loaded, scripts
run and the stream live) are Chromium's, at 1280 × 900. My own take is a click on the
card's button, timed in the page until the card shows in Owned and until the answer has
settled and a frame is painted; someone else's is a teammate's API call, from sending it
until the card changed on my board.

{board_table(results.get("bigboard", []))}

{findings}
"""


def _storm_size(results: dict[str, list[Row]]) -> str:
    rows = results.get("storm", [])
    return f"{rows[0]['streams']:,}" if rows else "N"


def _presence_size(results: dict[str, list[Row]]) -> str:
    rows = results.get("presence", [])
    return f"{rows[0]['viewers']:,}" if rows else "N"


def _changes(results: dict[str, list[Row]]) -> int:
    return int(results["fanout"][0]["changes"]) if results["fanout"] else 0


def draw_storm(row: Row, path: Path) -> None:
    """Boards caught up against seconds after SIGTERM."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 4), dpi=110)
    axis.step(
        [seconds for seconds, _share in row["caught_up_curve"]],
        [share for _seconds, share in row["caught_up_curve"]],
        where="post",
        color="#2563eb",
        label="boards caught up",
    )
    axis.axvline(
        row["restart_seconds"], color="#9ca3af", linestyle="--", label="new server answers"
    )
    axis.set_xlabel("seconds after SIGTERM")
    axis.set_ylabel("boards caught up (%)")
    axis.set_ylim(0, 100)
    axis.set_title(f"A deploy with {row['streams']:,} open boards: back, with nothing missed")
    axis.grid(True, alpha=0.3)
    axis.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def draw(fanout: Sequence[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 4.5), dpi=110)
    for label, colour in (("project", "#2563eb"), ("floor", "#9ca3af")):
        rows = sorted((r for r in fanout if r["label"] == label), key=lambda r: r["subscribers"])
        counts = [r["subscribers"] for r in rows]
        axis.plot(counts, [r["p99_ms"] for r in rows], "o-", color=colour, label=f"{label} p99")
        axis.plot(counts, [r["p50_ms"] for r in rows], "s--", color=colour, label=f"{label} p50")
    axis.set_xscale("log")
    sizes = sorted({r["subscribers"] for r in fanout})
    axis.set_xticks(sizes, [f"{n:,}" for n in sizes])
    axis.minorticks_off()
    axis.set_yscale("log")
    axis.set_xlabel("open streams (subscribers)")
    axis.set_ylabel("change sent → event received (ms)")
    axis.set_title("Live fan-out latency: Sprintboard against the bare framework")
    axis.grid(True, alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
