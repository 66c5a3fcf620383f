"""Presence under a crowd: a thousand people open the sprint's board at once while
someone works. What the server sends them, what it costs, whether anyone falls behind,
and how long the person making changes waits.

Then, on a fresh server, the same number of tabs of one person open the same board: the
same requests, queries and streams, but presence never changes after the first (a person
counts once). The difference between the two is what keeping everyone told costs.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from dataclasses import asdict, dataclass, field

from bench.actor import act
from bench.crowd import Crowd
from bench.http import Connection, ownership_change, request_bytes
from bench.procs import Server
from bench.seed import Scenario
from bench.stats import percentile

ACTOR_SPACING = 0.1  # seconds between the actor's changes while the crowd joins
ACTOR_CHANGES = 30
SETTLE_SECONDS = 10.0  # the last join's notice must reach everyone within this


@dataclass
class PresenceResult:
    label: str  # "people" (everyone someone else) or "tabs" (one person's)
    viewers: int
    subscribed: int = 0
    connect_seconds: float = math.nan
    dropped_streams: int = 0
    repeats: int = 0
    # Every stream's latest notice came after the last join: everyone sees the crowd.
    up_to_date: int = 0
    notices_sent: int = 0  # by the server (from its log at exit)
    notices_per_stream: float = math.nan  # received, on average
    # From the first connection until every stream had the last notice (or joined).
    seconds: float = math.nan
    kib_per_stream: float = math.nan  # received while joining and settling
    api_viewers: int = 0  # GET /api/v1/sprints/<id>/presence at the end
    cpu_ms: float = math.nan  # the server's, from the first join until settled
    cpu_us_per_join: float = math.nan
    actor_p50_ms: float = math.nan
    actor_max_ms: float = math.nan
    actor_errors: int = 0
    server_errors: list[str] = field(default_factory=list)
    people: int = 0  # distinct people among the streams

    @property
    def ok(self) -> bool:
        return (
            self.subscribed == self.viewers
            and not self.dropped_streams
            and not self.repeats
            and not self.actor_errors
            and not self.server_errors
            and self.api_viewers == self.people
            and (self.people == 1 or self.up_to_date == self.viewers)
        )

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "ok": self.ok}


NOTICES = re.compile(r"sent (\d+) presence notices")


async def measure(
    server: Server, scenario: Scenario, tokens: list[str], streams: int
) -> PresenceResult:
    """`streams` streams open the sprint's board at once, with `tokens` in turn (one
    per person), while the actor takes and releases a task every ACTOR_SPACING seconds."""
    people = len(set(tokens))
    result = PresenceResult("people" if people > 1 else "tabs", streams, people=people)
    host = f"127.0.0.1:{server.port}"
    auth = {"Authorization": f"Bearer {scenario.actor_token}", "X-Organization-Id": scenario.org}
    path = f"/o/{scenario.org}/events?sprint={scenario.sprint}"
    task = scenario.fanout_task
    changes = [
        ownership_change(n, task=task, host=host, headers=auth) for n in range(ACTOR_CHANGES)
    ]
    await _warm_up(server, path, tokens[0])
    crowd = Crowd("127.0.0.1", server.port, path, {}, tokens=tokens, count_presence=True)
    cpu_before = server.cpu()
    started = time.perf_counter()
    acting = asyncio.ensure_future(act(server.port, changes, started + 0.05, ACTOR_SPACING))
    result.connect_seconds = await crowd.connect(streams)
    timeline = await acting
    result.subscribed = crowd.subscribed_count
    joined = crowd.last_subscribed
    if people > 1:
        await crowd.wait_until(
            lambda: all(s.last_notice > joined for s in crowd.streams), within=SETTLE_SECONDS
        )
    result.seconds = max([joined, *(s.last_notice for s in crowd.streams)]) - started
    result.cpu_ms = (server.cpu() - cpu_before) * 1000
    result.cpu_us_per_join = result.cpu_ms * 1000 / max(1, crowd.subscribed_count)
    result.up_to_date = sum(1 for s in crowd.streams if s.last_notice > joined)
    result.dropped_streams = crowd.lost_early
    result.repeats = crowd.repeats
    streams = max(1, len(crowd.streams))
    result.notices_per_stream = sum(s.notices for s in crowd.streams) / streams
    result.kib_per_stream = sum(s.bytes for s in crowd.streams) / streams / 1024
    actor_times = [answered - sent for sent, answered, _status in timeline]
    result.actor_errors = sum(1 for _s, _a, status in timeline if not 200 <= status < 300)
    result.actor_p50_ms = percentile(actor_times, 0.50) * 1000
    result.actor_max_ms = max(actor_times) * 1000
    reply = await Connection("127.0.0.1", server.port).send(
        request_bytes("GET", f"/api/v1/sprints/{scenario.sprint}/presence", host=host, headers=auth)
    )
    result.api_viewers = len(json.loads(reply.body)["viewers"])
    crowd.close()
    if ACTOR_CHANGES % 2:  # give the task back
        await Connection("127.0.0.1", server.port).send(changes[1])
    result.server_errors = server.errors_logged()
    return result


def notices_sent(log: str) -> int:
    """How many presence notices the server sent, as it logged at exit."""
    found = NOTICES.findall(log)
    return int(found[-1]) if found else 0


async def _warm_up(server: Server, path: str, token: str) -> None:
    """One stream opened and closed: templates compiled, caches filled."""
    crowd = Crowd("127.0.0.1", server.port, path, {}, tokens=[token])
    await crowd.connect(1)
    crowd.close()
