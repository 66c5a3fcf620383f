"""The benchmark's smoke run (`python -m bench --smoke`): 200 streams, 5 changes, a short
take/release run with requests dropped mid-flight, and the Redis and two-worker shapes.

It fails on errors and lost events, never on timings: CI machines are shared, and
speed is proven by `make bench`, not by timed assertions.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ON_POSTGRES

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(
        ON_POSTGRES, reason="the smoke run brings its own databases; once is enough"
    ),
]


def test_the_benchmark_smoke_run_delivers_every_event_without_errors(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    results = json.loads(out.read_text())

    streams = results["fanout"] + results["variants"] + results["compressed"]
    assert {(r["label"], r["subscribers"]) for r in results["fanout"]} == {
        ("project", 200),
        ("floor", 200),
    }
    for row in streams:
        assert row["subscribed"] == row["subscribers"], row
        assert row["delivered"] == row["expected"] == row["subscribers"] * row["changes"], row
        assert row["actor_errors"] == 0 and row["server_errors"] == [], row
        assert row["repeats"] == 0 and row["dropped_streams"] == 0, row
        assert row["refused"] == {} and row["connect_errors"] == {}, row

    # Every stream asked for gzip and got each event once; the bytes on the wire shrank.
    plain, gzip = results["compressed"]
    assert (plain["label"], gzip["label"]) == ("project", "project, gzip")
    assert gzip["wire_bytes_per_delivery"] < plain["wire_bytes_per_delivery"]

    rates = results["throughput"] + results["variant_throughput"]
    assert any(r["dropped"] for r in rates), "no run dropped requests mid-flight"
    for row in rates:
        assert row["completed"] > 0 and row["errors"] == 0, row
        assert row["history_breaks"] == 0 and row["server_errors"] == [], row

    # A crowd joins: everyone sees everyone, nobody falls behind, the API agrees.
    assert [(r["people"], r["viewers"]) for r in results["presence"]] == [(50, 50), (1, 50)]
    for row in results["presence"]:
        assert row["ok"] and row["api_viewers"] == row["people"], row
    assert results["presence"][0]["up_to_date"] == 50 and results["presence"][0]["notices_sent"]

    # A big board (the smoke run's is small): measured in Chromium, its messages light.
    (board,) = results["bigboard"]
    assert board["tasks"] == 50 and board["dom"]["story"] > 0 and board["remote_ms"], board
    assert 0 < board["message_bytes"]["take"] < board["message_bytes"]["complete"], board

    # A deploy: every board comes back, misses nothing and gets nothing twice.
    (storm,) = results["storm"]
    assert storm["ok"] and storm["reconnected"] == storm["streams"] == 100, storm
    assert storm["missed"] == 0 and storm["repeats"] == 0 and storm["events"] > 0, storm
    assert 500 <= storm["retry_min_ms"] <= storm["retry_max_ms"] <= 5000, storm
