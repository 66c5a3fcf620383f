"""Deploys nobody notices, with several workers: SIGTERM tells every stream when to come
back (spread over 0.5-5 s), every process is gone within 10 s, WebSockets close with 1012,
and clients that resume after the restart miss nothing and get nothing twice."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import websockets
from sqlalchemy import select

from app.db import Database
from app.models import Organization
from app.tasks.lifecycle import Action
from tests.factories import Scene, act, build_scene, token_for
from tests.redis_server import running_redis
from tests.server import Server, free_port, start_server
from tests.sse_client import Stream, open_stream

pytestmark = pytest.mark.server

STREAMS = 20
EXIT_SECONDS = 10.0


def workers_of(pid: int) -> list[int]:
    """The worker processes a supervisor started (not multiprocessing's resource
    tracker, which leaves on its own once the supervisor has gone)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                command = (entry / "cmdline").read_bytes()
                if int(fields[1]) == pid and b"spawn_main" in command:
                    found.append(int(entry.name))
    return found


def serving_workers(server: Server, count: int) -> list[int]:
    """The supervisor's `count` workers once each has said it is serving. Until then a
    worker may not have set its SIGTERM handler, and a signal kills it outright (even
    a stopped one), which is not the shutdown a test means to try."""
    workers: list[int] = []
    deadline = time.monotonic() + 30
    while len(workers) < count and time.monotonic() < deadline:
        workers = workers_of(server.process.pid)
        time.sleep(0.05)  # the next worker is spawned in a moment
    assert len(workers) == count, workers
    for pid in workers:
        assert server.wait_for_line(f"[{pid}] [INFO] Running on", within=30), "".join(server.log)
    return workers


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone in all but name (its parent has not reaped it yet).
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return False


@pytest.fixture
async def scene_on(postgres_url: str) -> AsyncIterator[tuple[Database, Scene, dict[str, str]]]:
    db = Database(postgres_url)
    scene = await build_scene(db)
    tokens = {who: await token_for(db, scene.people[who]) for who in ("bob", "carol")}
    try:
        yield db, scene, tokens
    finally:
        await db.close()


async def newest(db: Database, scene: Scene) -> int:
    async with db.read() as s:
        value = await s.scalar(
            select(Organization.last_event_id).where(Organization.id == scene.acme.org.id)
        )
        return int(value or 0)


async def read_to_the_end(stream: Stream, last_id: int) -> tuple[list[int], int]:
    """The `retry:` values a stream sends until the server ends it, and the last event
    id it received (where its client resumes)."""
    retries = []
    with contextlib.suppress(EOFError, httpx.HTTPError):
        while True:
            message = await stream.next(wait=EXIT_SECONDS)
            if message.kind == "retry" and message.retry is not None:
                retries.append(message.retry)
            elif message.kind == "event" and message.id is not None:
                last_id = message.id
    return retries, last_id


async def test_sigterm_with_two_workers_spreads_the_retries_and_loses_nothing(
    postgres_url: str, scene_on: tuple[Database, Scene, dict[str, str]]
) -> None:
    db, scene, tokens = scene_on
    who = ["bob", "carol"]
    with running_redis() as redis:
        env = {"REDIS_URL": redis.url, "SPRINTBOARD_HEARTBEAT_SECONDS": "0.5"}
        server = start_server(postgres_url, workers=2, **env)
        workers = serving_workers(server, 2)
        try:
            async with httpx.AsyncClient(timeout=30) as http, contextlib.AsyncExitStack() as open_:
                streams = []
                for n in range(STREAMS):
                    auth = {"Authorization": f"Bearer {tokens[who[n % 2]]}"}
                    stream = await open_.enter_async_context(
                        open_stream(http, f"{server.url}/o/acme/events", auth)
                    )
                    assert (await stream.next(wait=10)).kind == "retry"  # subscribed
                    streams.append(stream)
                start = await newest(db, scene)
                task = scene.acme.tasks[0]
                await act(db, scene.acme, task, Action.TAKE, scene.bob)
                # The CLI's change is announced by nobody: the 10 s look at the log, or
                # the next announcement, brings it. Make one through the API as well.
                answer = await http.delete(
                    f"{server.url}/api/v1/tasks/{task.id}/ownership",
                    headers={"Authorization": f"Bearer {tokens['bob']}"},
                )
                assert answer.status_code == 200
                for stream in streams:
                    got = [await stream.next_event(wait=15) for _ in range(2)]
                    assert [m.id for m in got] == [start + 1, start + 2]

                stopping = time.monotonic()
                server.process.send_signal(signal.SIGTERM)
                ends = await asyncio.gather(*(read_to_the_end(s, start + 2) for s in streams))
                assert server.exit_status(within=EXIT_SECONDS) == 0
                took = time.monotonic() - stopping
        finally:
            server.stop()
        assert took <= EXIT_SECONDS
        assert not [pid for pid in workers if alive(pid)], "a worker outlived the supervisor"
        last = [retries[-1] for retries, _ in ends]
        assert all(500 <= ms <= 5000 for ms in last), last
        assert len(set(last)) >= STREAMS // 2 and statistics.pstdev(last) > 500, last

        # While no server runs, the work goes on (another instance, the CLI).
        for action in (Action.TAKE, Action.START, Action.COMPLETE):
            await act(db, scene.acme, scene.acme.tasks[1], action, scene.carol)
        server = start_server(postgres_url, port=server.port, workers=2, **env)
        try:
            async with httpx.AsyncClient(timeout=30) as http:
                for n, (_, last_id) in enumerate(ends):
                    headers = {
                        "Authorization": f"Bearer {tokens[who[n % 2]]}",
                        "Last-Event-ID": str(last_id),  # what this client saw last
                    }
                    async with open_stream(http, f"{server.url}/o/acme/events", headers) as again:
                        got = await again.events_until_quiet(wait=10)
                    assert [m.id for m in got] == list(range(last_id + 1, start + 6))
        finally:
            server.stop()


async def test_sigterm_closes_websockets_with_service_restart(
    postgres_url: str, scene_on: tuple[Database, Scene, dict[str, str]]
) -> None:
    _db, _scene, tokens = scene_on
    with running_redis() as redis:
        server: Server = start_server(postgres_url, workers=2, REDIS_URL=redis.url)
        try:
            url = server.url.replace("http", "ws") + "/api/v1/ws/tasks"
            auth = {"Authorization": f"Bearer {tokens['bob']}"}
            async with websockets.connect(url, additional_headers=auth) as ws:
                server.process.send_signal(signal.SIGTERM)
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    while True:
                        await asyncio.wait_for(ws.recv(), EXIT_SECONDS)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
            assert server.exit_status(within=EXIT_SECONDS) == 0
        finally:
            server.stop()


def test_a_worker_that_will_not_stop_is_killed_in_time(database_url: str) -> None:
    """A worker stuck at shutdown (stopped with SIGSTOP here: it cannot act on SIGTERM)
    is killed at the supervisor's deadline, and every process is still gone within
    EXIT_SECONDS of the SIGTERM."""
    with running_redis() as redis:
        server = start_server(database_url, workers=2, REDIS_URL=redis.url)
        try:
            workers = serving_workers(server, 2)
            os.kill(workers[0], signal.SIGSTOP)
            sent = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            assert server.exit_status(within=EXIT_SECONDS) == 0
            assert time.monotonic() - sent < EXIT_SECONDS
            assert not any(alive(pid) for pid in workers)
            # (The log is read by a thread: its last lines may land a moment after exit.)
            said = f"worker {workers[0]} did not stop in time; killing it"
            assert server.wait_for_line(said, within=5), "".join(server.log)
        finally:
            server.stop()


def test_workers_that_cannot_start_stop_the_server_instead_of_looping() -> None:
    """The database is unreachable: each worker dies at start. The supervisor gives up
    with status 1 (for the process manager to see) rather than restarting them forever."""
    environ = {
        **os.environ,
        "SPRINTBOARD_ENV": "development",
        "SECRET_KEY": "s",
        "DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:9/nowhere",
        "REDIS_URL": "redis://127.0.0.1:9/0",
    }
    port = str(free_port())
    command = [sys.executable, "-m", "app", "serve", "--port", port, "--workers", "2"]
    finished = subprocess.run(command, env=environ, capture_output=True, text=True, timeout=60)
    assert finished.returncode == 1, finished.stderr[-2000:]
    assert "could not start" in finished.stderr
