"""Fan-out: N subscribers on one organization, then changes at a steady pace.

For each change, the time from sending the request to each subscriber receiving its
event. The same load runs against the floor (bench/floor.py) with a message of the
same size, so each figure can be read as a ratio to what the framework alone costs.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, dataclass, field

import httpx

from bench.actor import act
from bench.crowd import Crowd
from bench.http import Connection, ownership_change, request_bytes, task_history
from bench.procs import Server
from bench.seed import Scenario
from bench.stats import percentile


@dataclass
class FanoutResult:
    label: str  # "project", "floor", "project (Redis)", …
    subscribers: int
    changes: int
    subscribed: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    connect_errors: dict[str, int] = field(default_factory=dict)
    dropped_streams: int = 0
    repeats: int = 0
    connect_seconds: float = math.nan
    delivered: int = 0
    expected: int = 0
    p50_ms: float = math.nan
    p99_ms: float = math.nan
    max_ms: float = math.nan
    actor_p50_ms: float = math.nan
    actor_max_ms: float = math.nan
    actor_errors: int = 0
    kib_per_stream: float = math.nan
    cpu_us_per_delivery: float = math.nan
    # Every byte the streams received during the changes (HTTP chunking included), per
    # delivery: what one event costs the network.
    wire_bytes_per_delivery: float = math.nan
    # Reading and rendering one event, from the project's log at exit (app/live/render.py).
    render_ms_per_event: float = math.nan
    server_errors: list[str] = field(default_factory=list)

    @property
    def share_delivered(self) -> float:
        return self.delivered / self.expected if self.expected else 0.0

    @property
    def lost(self) -> int:
        return self.expected - self.delivered

    @property
    def ok(self) -> bool:
        return (
            self.subscribed == self.subscribers
            and self.delivered == self.expected
            and not self.actor_errors
            and not self.server_errors
            and not self.dropped_streams
            and not self.repeats
            and not self.refused
            and not self.connect_errors
        )

    def as_dict(self) -> dict[str, object]:
        return {
            **asdict(self),
            "share_delivered": self.share_delivered,
            "lost": self.lost,
            "ok": self.ok,
        }


CHANGE_SPACING = 0.2  # seconds between changes


class Target:
    """What is being measured: where to subscribe and how to make a change."""

    label = ""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.actor = Connection("127.0.0.1", server.port)

    def crowd(self) -> Crowd:
        raise NotImplementedError

    def change_request(self, number: int) -> bytes:
        raise NotImplementedError

    async def event_ids(self, changes: int) -> list[int]:
        """The id of the event each change produced, in order."""
        raise NotImplementedError

    async def restore(self, changes: int) -> None:
        """Put things back as they were before `changes` changes."""

    async def warm_up(self) -> None:
        """One event through one stream before measuring: a server that has served
        before has its templates compiled and its caches filled; so must this one."""
        crowd = self.crowd()
        await crowd.connect(1)
        for number in range(2):
            reply = await self.actor.send(self.change_request(number))
            assert reply.status < 300, reply
        await crowd.wait_until(lambda: len(crowd.arrivals) >= 2, within=10.0)
        crowd.close()
        # Opening thousands of streams takes longer than the server keeps an idle
        # connection: the measured changes start on a new one.
        await self.actor.close()


class ProjectTarget(Target):
    def __init__(
        self, server: Server, scenario: Scenario, label: str = "project", *, gzip: bool = False
    ) -> None:
        super().__init__(server)
        self.scenario = scenario
        self.label = label
        self.gzip = gzip
        self.host = f"127.0.0.1:{server.port}"
        self.auth = {
            "Authorization": f"Bearer {scenario.actor_token}",
            "X-Organization-Id": scenario.org,
        }

    def crowd(self) -> Crowd:
        return Crowd(
            "127.0.0.1",
            self.server.port,
            f"/o/{self.scenario.org}/events",
            {"Authorization": f"Bearer {self.scenario.watcher_token}"},
            gzip=self.gzip,
        )

    def change_request(self, number: int) -> bytes:
        return ownership_change(
            number, task=self.scenario.fanout_task, host=self.host, headers=self.auth
        )

    async def event_ids(self, changes: int) -> list[int]:
        events = await task_history(self.server.port, self.scenario.fanout_task, self.auth)
        return sorted(event["id"] for event in events)[-changes:]

    async def restore(self, changes: int) -> None:
        if changes % 2:  # the task is still taken: give it back
            await self.actor.send(self.change_request(changes))

    async def sample_message(self) -> bytes:
        """One event message exactly as subscribers receive it, its id set to 0 (the
        floor sends the same bytes): the second of a take and its give-back (the day's
        first message of a sprint also carries its header)."""
        url = f"{self.server.base}/o/{self.scenario.org}/events"
        headers = {"Authorization": f"Bearer {self.scenario.watcher_token}"}
        buffer = b""
        async with (
            httpx.AsyncClient(timeout=10) as client,
            client.stream("GET", url, headers=headers) as response,
        ):
            async for chunk in response.aiter_bytes():
                if not buffer:  # subscribed (`retry:` came first): make two changes
                    for number in (0, 1):  # (the task is then back where it was)
                        reply = await self.actor.send(self.change_request(number))
                        assert reply.status == 200, reply
                buffer += chunk
                found = list(_MESSAGE.finditer(buffer))
                if len(found) >= 2:
                    return _MESSAGE_ID.sub(b"id: 0\n", found[1].group(0), count=1)
        raise RuntimeError("the stream ended before two events arrived")


_MESSAGE = re.compile(rb"id: \d+\n.*?\n\n", re.S)
_MESSAGE_ID = re.compile(rb"^id: \d+\n")


class FloorTarget(Target):
    label = "floor"

    def __init__(self, server: Server, message: bytes) -> None:
        super().__init__(server)
        self.message = message
        self.host = f"127.0.0.1:{server.port}"
        self.sent = 0

    def crowd(self) -> Crowd:
        return Crowd("127.0.0.1", self.server.port, "/events", {})

    def change_request(self, number: int) -> bytes:
        self.sent += 1  # ids go on rising, warm-up included, as the project's do
        body = self.message.replace(b"id: 0\n", f"id: {self.sent}\n".encode(), 1)
        return request_bytes("POST", "/publish", host=self.host, body=body)

    async def event_ids(self, changes: int) -> list[int]:
        return list(range(self.sent - changes + 1, self.sent + 1))


RENDERED = re.compile(r"rendered (\d+) events \(median ([\d.]+) ms each\)")


def render_cost(log: str) -> float:
    """Milliseconds of reading and rendering per event, as the project logged at exit."""
    found = RENDERED.findall(log)
    return float(found[-1][1]) if found else math.nan


async def measure(
    target: Target, subscribers: int, *, changes: int, spacing: float = CHANGE_SPACING
) -> FanoutResult:
    """Connect `subscribers` streams, make `changes` changes `spacing` s apart, and see
    who received what when."""
    server = target.server
    result = FanoutResult(target.label, subscribers, changes)
    await target.warm_up()
    crowd = target.crowd()
    rss_before = server.rss()
    result.connect_seconds = await crowd.connect(subscribers)
    result.subscribed = crowd.subscribed_count
    result.refused = dict(crowd.refusals)
    result.connect_errors = dict(crowd.connect_errors)
    result.kib_per_stream = (server.rss() - rss_before) / 1024 / max(1, crowd.subscribed_count)

    cpu_before, wire_before = server.cpu(), crowd.wire_bytes
    requests = [target.change_request(number) for number in range(changes)]
    # The actor's process starts in well under a second; the first change waits for it.
    timeline = await act(server.port, requests, time.perf_counter() + 1.0, spacing)
    sent_at = [sent for sent, _answered, _status in timeline]
    actor_times = [answered - sent for sent, answered, _status in timeline]
    result.actor_errors = sum(1 for _s, _a, status in timeline if not 200 <= status < 300)

    ids = await target.event_ids(changes)
    listening = crowd.subscribed_count - crowd.lost_early
    await crowd.wait_until(
        lambda: all(len(crowd.arrivals.get(i, ())) >= listening for i in ids), within=10.0
    )
    result.dropped_streams = crowd.lost_early
    result.repeats = crowd.repeats
    latencies = [
        arrival - sent
        for event_id, sent in zip(ids, sent_at, strict=True)
        for arrival in crowd.arrivals.get(event_id, ())
    ]
    result.delivered = len(latencies)
    result.expected = crowd.subscribed_count * changes
    cpu = server.cpu() - cpu_before
    result.cpu_us_per_delivery = cpu / max(1, result.delivered) * 1e6
    result.wire_bytes_per_delivery = (crowd.wire_bytes - wire_before) / max(1, result.delivered)
    result.p50_ms = percentile(latencies, 0.50) * 1000
    result.p99_ms = percentile(latencies, 0.99) * 1000
    result.max_ms = max(latencies, default=math.nan) * 1000
    result.actor_p50_ms = percentile(actor_times, 0.50) * 1000
    result.actor_max_ms = max(actor_times) * 1000
    crowd.close()
    await target.restore(changes)
    await target.actor.close()
    result.server_errors = server.errors_logged()
    return result
