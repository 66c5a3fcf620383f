"""The person making the changes, in a process of their own.

The load generator's loop reads thousands of streams; an answer to the actor arriving
meanwhile would wait its turn there and be timed late. In its own process the actor's
clock is fair. `time.perf_counter` is the system's monotonic clock on Linux, so the
send times it reports compare with the arrival times the streams note.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor

import uvloop

from bench.http import Connection

Timeline = list[tuple[float, float, int]]  # (sent, answered, HTTP status; 0: no answer)


async def act(port: int, requests: list[bytes], start: float, spacing: float) -> Timeline:
    """In a separate process: send each request at `start + n × spacing`."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_POOL, _run, port, requests, start, spacing)


def _run(port: int, requests: list[bytes], start: float, spacing: float) -> Timeline:
    return uvloop.run(_send_all(port, requests, start, spacing))


async def _send_all(port: int, requests: list[bytes], start: float, spacing: float) -> Timeline:
    connection = Connection("127.0.0.1", port)
    await connection.open()
    timeline: Timeline = []
    for number, raw in enumerate(requests):
        await asyncio.sleep(max(0.0, start + number * spacing - time.perf_counter()))
        sent = time.perf_counter()
        try:
            status = (await connection.send(raw)).status
        except (OSError, asyncio.IncompleteReadError):
            status = 0  # no answer (the server is away): the next change opens a new connection
            await connection.close()
        timeline.append((sent, time.perf_counter(), status))
    await connection.close()
    return timeline


# One worker process for the whole run, started fresh (not forked from a process that
# holds thousands of sockets).
_POOL = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
