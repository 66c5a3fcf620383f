"""Mutation throughput: take/release cycles from concurrent clients for a fixed time.

Each client owns one task and alternates take and release on a keep-alive connection.
The floor is a POST that does nothing, driven by the same client code. A second run
hangs up on some requests mid-flight and then checks that no request failed and that
every task's history is an unbroken chain of the changes the server accepted.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter
from dataclasses import asdict, dataclass, field

from bench.http import Connection, request_bytes
from bench.procs import Server
from bench.seed import Scenario


@dataclass
class ThroughputResult:
    label: str
    clients: int
    seconds: float
    completed: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    dropped: int = 0
    history_breaks: int = 0
    server_cpu_seconds: float = math.nan
    server_errors: list[str] = field(default_factory=list)

    @property
    def cpu_ms_per_request(self) -> float:
        return self.server_cpu_seconds / self.completed * 1000 if self.completed else math.nan

    @property
    def server_busy(self) -> float:
        """The share of one core the server used."""
        return self.server_cpu_seconds / self.seconds if self.seconds else math.nan

    @property
    def per_second(self) -> float:
        return self.completed / self.seconds if self.seconds else math.nan

    @property
    def ok(self) -> bool:
        return not self.errors and not self.history_breaks and not self.server_errors

    def as_dict(self) -> dict[str, object]:
        return {
            **asdict(self),
            "per_second": self.per_second,
            "cpu_ms_per_request": self.cpu_ms_per_request,
            "server_busy": self.server_busy,
            "ok": self.ok,
        }


async def _drive(
    server: Server,
    requests: list[list[bytes]],
    seconds: float,
    *,
    drop_every: int = 0,
    accept: frozenset[int] = frozenset({200, 204}),
) -> tuple[Counter[str], int, int, int, float]:
    """Each client sends its requests round and round for `seconds`. With `drop_every`,
    every n-th request is sent and hung up on. Returns status counts, completed,
    errors, drops and the seconds it took. After a drop, answers may be 409 until one
    succeeds: the dropped change may or may not have happened, and on PostgreSQL may
    commit only after the next request was answered (the write goes on when the client
    leaves). That is expected; anything else is an error."""
    statuses: Counter[str] = Counter()
    totals = {"completed": 0, "errors": 0, "dropped": 0}
    deadline = time.perf_counter() + seconds

    async def client(own: list[bytes]) -> None:
        connection = Connection("127.0.0.1", server.port)
        number, after_drop = 0, False
        while time.perf_counter() < deadline:
            raw = own[number % len(own)]
            number += 1
            if drop_every and number % drop_every == 0:
                await connection.drop(raw)
                totals["dropped"] += 1
                after_drop = True
                continue
            try:
                reply = await connection.send(raw)
            except (OSError, asyncio.IncompleteReadError) as error:
                statuses[type(error).__name__] += 1
                totals["errors"] += 1
                connection = Connection("127.0.0.1", server.port)
                continue
            statuses[str(reply.status)] += 1
            if reply.status in accept:
                totals["completed"] += 1
                after_drop = False
            elif not (after_drop and reply.status == 409):
                totals["errors"] += 1
        await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(own) for own in requests))
    elapsed = time.perf_counter() - started  # the last answers come after the deadline
    return statuses, totals["completed"], totals["errors"], totals["dropped"], elapsed


def _cycle(scenario: Scenario, task_id: int, host: str) -> list[bytes]:
    headers = {
        "Authorization": f"Bearer {scenario.actor_token}",
        "X-Organization-Id": scenario.org,
    }
    path = f"/api/v1/tasks/{task_id}/ownership"
    return [
        request_bytes("PUT", path, host=host, headers=headers),
        request_bytes("DELETE", path, host=host, headers=headers),
    ]


async def measure_project(
    server: Server,
    scenario: Scenario,
    label: str,
    *,
    clients: int,
    seconds: float,
    drop_every: int = 0,
) -> ThroughputResult:
    host = f"127.0.0.1:{server.port}"
    tasks = scenario.throughput_tasks[:clients]
    requests = [_cycle(scenario, task, host) for task in tasks]
    cpu = server.cpu()
    statuses, completed, errors, dropped, elapsed = await _drive(
        server, requests, seconds, drop_every=drop_every, accept=frozenset({200})
    )
    result = ThroughputResult(label, clients, elapsed, completed, dict(statuses), errors, dropped)
    result.server_cpu_seconds = server.cpu() - cpu
    result.history_breaks = await _history_breaks(server, scenario, tasks)
    # Leave every task available for the next run.
    for task in tasks:
        await Connection("127.0.0.1", server.port).send(_cycle(scenario, task, host)[1])
    result.server_errors = server.errors_logged()
    return result


async def measure_floor(server: Server, *, clients: int, seconds: float) -> ThroughputResult:
    raw = request_bytes("POST", "/noop", host=f"127.0.0.1:{server.port}")
    cpu = server.cpu()
    statuses, completed, errors, dropped, elapsed = await _drive(server, [[raw]] * clients, seconds)
    result = ThroughputResult("floor", clients, elapsed, completed, dict(statuses), errors, dropped)
    result.server_cpu_seconds = server.cpu() - cpu
    result.server_errors = server.errors_logged()
    return result


async def _history_breaks(server: Server, scenario: Scenario, tasks: tuple[int, ...]) -> int:
    """How many events do not follow from the one before (status or owner)."""
    host = f"127.0.0.1:{server.port}"
    headers = {
        "Authorization": f"Bearer {scenario.actor_token}",
        "X-Organization-Id": scenario.org,
    }
    breaks = 0
    connection = Connection("127.0.0.1", server.port)
    for task in tasks:
        reply = await connection.send(
            request_bytes("GET", f"/api/v1/tasks/{task}/history", host=host, headers=headers)
        )
        events = sorted(json.loads(reply.body)["events"], key=lambda e: e["id"])
        status, owner = None, None
        for event in events:
            if event["type"] == "task_created":
                status, owner = event["new_status"], event["owner_user_id"]
                continue
            if event["old_status"] != status or event["previous_owner_user_id"] != owner:
                breaks += 1
            status, owner = event["new_status"], event["owner_user_id"]
    await connection.close()
    return breaks
