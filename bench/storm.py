"""A reconnect storm: thousands of open boards, a deploy (SIGTERM, a new server on the
same port), and every board coming back with `Last-Event-ID`, as EventSource does, while
someone keeps making changes.

Each client here behaves like a browser's EventSource: it waits the last `retry:` the
server sent before reconnecting (the server spreads them over 0.5–5 s on shutdown),
tries again after the same delay while nobody answers, and sends the last id it saw.
What is measured: when every client had reconnected and received every event committed
up to its reconnection (the event log's own timestamps say when each was committed),
the acting person's answer times meanwhile, and events missed or received twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import procs, runner
from bench.actor import act
from bench.http import Connection, ownership_change, request_bytes, task_history
from bench.seed import Scenario
from bench.stats import cumulative, percentile

_ID_LINE = re.compile(rb"\nid: (\d+)\r?\n")
_RETRY_LINE = re.compile(rb"(?:^|\n)retry: (\d+)\r?\n")
_TAIL = 32
ACTOR_SPACING = 0.2
BEFORE_SECONDS = 3.0  # changes flowing before the deploy
RESTART_SECONDS = 4.0  # about how long the deploy takes (changes tried meanwhile fail)
AFTER_SECONDS = 8.0  # and changes after the new server answers
CATCH_UP_WITHIN = 60.0


@dataclass
class StormResult:
    streams: int
    connected: int = 0
    reconnected: int = 0
    reconnect_attempts: int = 0
    events: int = 0
    missed: int = 0  # events a client never received
    repeats: int = 0
    restart_seconds: float = math.nan  # SIGTERM until the new server answered
    old_exit_seconds: float = math.nan  # SIGTERM until the old server had exited
    caught_up_seconds: float = math.nan  # SIGTERM until every client had caught up
    retry_min_ms: int = 0
    retry_max_ms: int = 0
    actor_p50_ms: float = math.nan
    actor_max_ms: float = math.nan
    actor_during: int = 0  # changes answered between the restart and everyone caught up
    actor_refused: int = 0  # changes tried while no server ran (not errors of the app)
    actor_errors: int = 0  # changes answered with anything but 2xx (bar a 409 after a cut one)
    server_errors: list[str] = field(default_factory=list)
    # [seconds after SIGTERM, % of the clients caught up by then] (for the plot).
    caught_up_curve: list[list[float]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.connected == self.streams
            and self.reconnected == self.streams
            and not self.missed
            and not self.repeats
            and not self.actor_errors
            and not self.server_errors
            and self.caught_up_seconds == self.caught_up_seconds  # not NaN
        )

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "ok": self.ok}


class Client:
    """One board: its cursor, its retry, when each event reached it."""

    def __init__(self, storm: Storm) -> None:
        self.storm = storm
        self.last_id = 0
        self.retry_ms = 2000  # EventSource's own default until the server says
        self.arrivals: dict[int, float] = {}
        self.connections = 0
        self.reconnected_at = 0.0  # when a connection after the deploy was answered
        self.connected = asyncio.get_running_loop().create_future()

    def request(self) -> bytes:
        resume = {"Last-Event-ID": str(self.last_id)} if self.last_id else {}
        return request_bytes(
            "GET",
            f"/o/{self.storm.scenario.org}/events",
            host=f"127.0.0.1:{self.storm.port}",
            headers={**self.storm.auth, "Accept": "text/event-stream", **resume},
        )

    async def connect(self) -> None:
        self.storm.attempts += 1
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(lambda: Listening(self), "127.0.0.1", self.storm.port)
        except OSError:
            self.again()  # nobody answers yet: try after the same delay

    def again(self) -> None:
        if not self.storm.closing:
            loop = asyncio.get_running_loop()
            loop.call_later(self.retry_ms / 1000, lambda: asyncio.ensure_future(self.connect()))


class Listening(asyncio.Protocol):
    def __init__(self, client: Client) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.head = b""
        self.open = False
        self.tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        assert self.transport is not None
        self.transport.write(self.client.request())

    def data_received(self, data: bytes) -> None:
        now = time.time()
        client, storm = self.client, self.client.storm
        if not self.open:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            if self.head[9:12] != b"200":
                assert self.transport is not None
                self.transport.close()
                return
            data, self.head, self.open = self.head[end + 4 :], b"", True
            client.connections += 1
            if client.connections == 1:
                client.connected.set_result(None)
            elif not client.reconnected_at:
                client.reconnected_at = now
        scan = self.tail + data
        # A plain substring search first: the regex's leading `(?:^|\n)` has no literal
        # prefix to skip ahead with, and would walk every byte of every event in Python's
        # regex engine (at 5,000 streams, more than a core on its own).
        for match in _RETRY_LINE.finditer(scan) if b"retry: " in scan else ():
            if match.end() > len(self.tail):
                client.retry_ms = int(match.group(1))
                if storm.stopping:
                    storm.retries.append(client.retry_ms)
        for match in _ID_LINE.finditer(scan):
            if match.end() <= len(self.tail):
                continue
            event_id = int(match.group(1))
            if event_id <= client.last_id:
                storm.repeats += 1
                continue
            if client.last_id and event_id > client.last_id + 1:
                storm.missed += event_id - client.last_id - 1
            storm.reached(client.last_id, event_id)
            client.last_id = event_id
            client.arrivals[event_id] = now
        self.tail = scan[-_TAIL:]

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.again()


class Storm:
    def __init__(self, scenario: Scenario, port: int) -> None:
        self.scenario = scenario
        self.port = port
        self.auth = {"Authorization": f"Bearer {scenario.watcher_token}"}
        self.clients: list[Client] = []
        self.attempts = 0
        self.missed = 0
        self.repeats = 0
        self.retries: list[int] = []
        self.stopping = False
        self.closing = False
        self.target = 0
        self.behind = 0
        self.all_caught_up = asyncio.Event()

    def expect(self, final: int) -> None:
        """Set `all_caught_up` once every client has received event `final`."""
        self.target = final
        self.behind = sum(1 for c in self.clients if c.last_id < final)
        if not self.behind:
            self.all_caught_up.set()

    def reached(self, before: int, now: int) -> None:
        if self.target and before < self.target <= now:
            self.behind -= 1
            if not self.behind:
                self.all_caught_up.set()


async def measure(work: Path, scenario: Scenario, streams: int) -> StormResult:
    result = StormResult(streams)
    port = procs.free_port()
    storm = Storm(scenario, port)
    host = f"127.0.0.1:{port}"
    actor_auth = {"Authorization": f"Bearer {scenario.actor_token}", "X-Organization-Id": "acme"}
    task = scenario.fanout_task
    with runner.project(work, scenario.database_url, port=port) as old:
        first_id = max(commit_times(await task_history(port, task, actor_auth)), default=0)
        gate = asyncio.Semaphore(500)

        async def join() -> None:
            client = Client(storm)
            storm.clients.append(client)
            async with gate:
                await client.connect()
                await asyncio.wait_for(client.connected, 60)

        await asyncio.gather(*(join() for _ in range(streams)))
        result.connected = sum(1 for c in storm.clients if c.connections)
        total = int((BEFORE_SECONDS + RESTART_SECONDS + AFTER_SECONDS) / ACTOR_SPACING)
        changes = [
            ownership_change(n, task=task, host=host, headers=actor_auth) for n in range(total)
        ]
        started = time.perf_counter()
        # The actor goes on by the clock, in its own process, through the deploy.
        acting = asyncio.ensure_future(act(port, changes, started + 0.05, ACTOR_SPACING))
        await asyncio.sleep(BEFORE_SECONDS)  # changes flow as usual for a while
        storm.stopping = True
        term_wall, term = time.time(), time.perf_counter()
        old.stop()  # SIGTERM, and wait for it to exit
        result.old_exit_seconds = time.perf_counter() - term
        result.server_errors += old.errors_logged()
    with runner.project(work, scenario.database_url, port=port) as new:
        up = time.perf_counter()
        result.restart_seconds = up - term
        timeline = await acting
        logged = commit_times(await task_history(port, task, actor_auth))
        final = max(logged, default=first_id)
        committed = {i: at for i, at in logged.items() if i > first_id}
        storm.expect(final)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(storm.all_caught_up.wait(), CATCH_UP_WITHIN)
        storm.closing = True
        # Counted now: the streams are still open and will receive the change below.
        result.missed = storm.missed + sum(final - c.last_id for c in storm.clients)
        result.repeats = storm.repeats
        # Give the task back if the last change left it taken (a change cut off by the
        # deploy breaks the take/release alternation): the next runs start from it.
        await Connection("127.0.0.1", port).send(
            ownership_change(1, task=task, host=host, headers=actor_auth)
        )
        result.server_errors += new.errors_logged()
    result.events = final - first_id
    result.reconnected = sum(1 for c in storm.clients if c.reconnected_at)
    result.reconnect_attempts = storm.attempts - streams
    result.retry_min_ms = min(storm.retries, default=0)
    result.retry_max_ms = max(storm.retries, default=0)
    caught = []
    for client in storm.clients:
        if not client.reconnected_at:
            continue
        owed = [i for i, at in committed.items() if at <= client.reconnected_at]
        arrived = [client.arrivals.get(i, math.inf) for i in owed]
        caught.append(max([client.reconnected_at, *arrived]) - term_wall)
    result.caught_up_curve = cumulative(caught, streams)
    if len(caught) == streams and max(caught) < math.inf:
        result.caught_up_seconds = max(caught)
    during = [
        (answered - sent, status)
        for sent, answered, status in timeline
        if up <= sent <= up + (result.caught_up_seconds if caught else AFTER_SECONDS)
    ]
    times = [t for t, status in during if status]
    result.actor_during = len(times)
    result.actor_p50_ms = percentile(times, 0.5) * 1000
    result.actor_max_ms = max(times, default=math.nan) * 1000
    result.actor_refused = sum(1 for _s, _a, status in timeline if status == 0)
    # A change cut off by the deploy may have been committed, so the next one (take after
    # take) is refused with 409: expected, as in the dropped-request runs. Not an error.
    statuses = [status for _s, _a, status in timeline]
    result.actor_errors = sum(
        1
        for before, status in zip([200, *statuses], statuses, strict=False)
        if status >= 300 and not (status == 409 and before == 0)
    )
    return result


def commit_times(events: list[dict[str, Any]]) -> dict[int, float]:
    """Event id → when it was committed (the log's own timestamp)."""
    return {
        e["id"]: datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).timestamp()
        for e in events
    }
