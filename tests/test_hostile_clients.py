"""Hostile clients against a real Hypercorn process, over raw sockets.

Slow headers, a slow body, a 413 on a keep-alive connection, and a stream whose client
never reads: each is bounded in time, and what it held (a file descriptor, a slot in
the per-person stream limit, kernel buffers) is given back. The bounds are shortened
for the test through the same settings an operator would use (10 s, 30 s and 30 s by
default, see test_config.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.factories import Scene, scene_with_token
from tests.server import Server, running_server

pytestmark = pytest.mark.server

HEADERS_SECONDS = 2.0
BODY_SECONDS = 3.0
STALL_SECONDS = 2.0
# On top of each bound: CI machines are slow, and the point is "bounded", not "exact".
SLACK = 3.0


@dataclass
class Target:
    server: Server
    scene: Scene
    token: str

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.server.port)

    def auth_header(self) -> bytes:
        return f"Authorization: Bearer {self.token}\r\n".encode()

    def stream_path(self) -> str:
        return f"/o/acme/events?sprint={self.scene.acme.sprint.id}"


@pytest.fixture
async def target(database_url: str) -> AsyncIterator[Target]:
    scene, token = await scene_with_token(database_url)
    env = {
        "SPRINTBOARD_HEADERS_SECONDS": str(HEADERS_SECONDS),
        "SPRINTBOARD_BODY_SECONDS": str(BODY_SECONDS),
        "SPRINTBOARD_STALL_SECONDS": str(STALL_SECONDS),
        "MAX_STREAMS_PER_USER": "1",
    }
    with running_server(database_url, **env) as server:
        yield Target(server, scene, token)


async def until_closed(reader: asyncio.StreamReader, limit: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took.
    A reset is a close too: a byte the client sent after the server closed (a dribbler
    keeps sending) makes the kernel answer with RST instead of the FIN already sent."""
    started = time.monotonic()
    received = b""
    async with asyncio.timeout(limit):
        with contextlib.suppress(ConnectionResetError):
            while chunk := await reader.read(65536):
                received += chunk
    return received, time.monotonic() - started


async def test_headers_that_never_finish_are_cut_off(target: Target) -> None:
    async def dribbler() -> tuple[bytes, float]:
        reader, writer = await asyncio.open_connection(*target.address)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")

        async def dribble() -> None:
            # One more header byte now and then: never a complete request.
            with contextlib.suppress(ConnectionError):
                for _ in range(100):
                    await asyncio.sleep(0.25)
                    writer.write(b"X")
                    await writer.drain()

        task = asyncio.create_task(dribble())
        try:
            return await until_closed(reader, HEADERS_SECONDS + SLACK)
        finally:
            task.cancel()
            writer.close()

    # Many at once: each is closed by the same bound, none holds the server.
    results = await asyncio.gather(*(dribbler() for _ in range(50)))
    for received, elapsed in results:
        assert b"200" not in received
        assert elapsed < HEADERS_SECONDS + SLACK


async def test_a_body_that_never_finishes_is_answered_408_and_closed(target: Target) -> None:
    async def slow_body() -> tuple[bytes, float]:
        reader, writer = await asyncio.open_connection(*target.address)
        writer.write(
            b"POST /login/dev HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 1000000\r\n\r\nemail="
        )
        try:
            return await until_closed(reader, BODY_SECONDS + SLACK)
        finally:
            writer.close()

    results = await asyncio.gather(*(slow_body() for _ in range(100)))
    for received, elapsed in results:
        assert received.startswith(b"HTTP/1.1 408")
        assert b"connection: close" in received.lower()
        assert elapsed < BODY_SECONDS + SLACK
    # The server is fine afterwards.
    async with httpx.AsyncClient(base_url=target.server.url) as http:
        assert (await http.get("/healthz")).status_code == 200


async def test_413_closes_the_connection_so_nothing_after_the_body_is_misread(
    target: Target,
) -> None:
    reader, writer = await asyncio.open_connection(*target.address)
    body = b'{"title": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    story = target.scene.acme.stories[0]
    writer.write(
        f"POST /api/v1/stories/{story.id}/tasks HTTP/1.1\r\nHost: x\r\n".encode()
        + target.auth_header()
        + f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    )
    with contextlib.suppress(ConnectionError):
        writer.write(body)
        # A pipelined request right behind the body: it must not be answered.
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
    try:
        received, _elapsed = await until_closed(reader, 10)
    except ConnectionResetError:
        pytest.fail("the connection was reset instead of answered with 413")
    finally:
        writer.close()
    head = received.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(b"http/1.1 413")
    assert b"connection: close" in head
    assert received.count(b"HTTP/1.1 ") == 1  # the pipelined request got no answer


async def test_keep_alive_still_serves_a_second_request(target: Target) -> None:
    reader, writer = await asyncio.open_connection(*target.address)
    try:
        for _ in range(2):
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200")
            length = int(
                next(
                    line.split(b":")[1]
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
            )
            await reader.readexactly(length)
    finally:
        writer.close()


@contextlib.contextmanager
def stream_that_never_reads(target: Target) -> Iterator[socket.socket]:
    """An SSE stream whose client reads the response head, then nothing ever again."""
    sock = socket.socket()
    # A small receive window, so a few frames fill it and the server's writes stall.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(target.address)
    sock.sendall(
        f"GET {target.stream_path()} HTTP/1.1\r\nHost: x\r\n".encode()
        + target.auth_header()
        + b"Accept: text/event-stream\r\n\r\n"
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 200"), head
    try:
        yield sock
    finally:
        sock.close()


async def test_a_stream_whose_client_stops_reading_is_dropped_and_frees_its_slot(
    target: Target,
) -> None:
    headers = {"Authorization": f"Bearer {target.token}"}
    task = target.scene.acme.tasks[0]
    async with httpx.AsyncClient(base_url=target.server.url, timeout=10) as http:
        with stream_that_never_reads(target):
            # Bob may hold one stream: this one.
            assert (await http.get(target.stream_path(), headers=headers)).status_code == 429
            # Changes go out to it until its window is shut and the server's writes stall.
            for i in range(80):
                verb = http.put if i % 2 == 0 else http.delete
                response = await verb(f"/api/v1/tasks/{task.id}/ownership", headers=headers)
                assert response.status_code == 200
            stalled_at = time.monotonic()
            # Within the bound the server gives up on it, and the slot is free again.
            while True:
                async with http.stream("GET", target.stream_path(), headers=headers) as again:
                    if again.status_code == 200:
                        break
                    assert again.status_code == 429
                assert time.monotonic() - stalled_at < STALL_SECONDS + 2 * SLACK, (
                    "the stalled stream still holds its slot"
                )
                await asyncio.sleep(0.2)
    # The drop is one line in the log, not a traceback.
    assert await asyncio.to_thread(target.server.wait_for_line, "connection dropped", SLACK)
    assert not any("Traceback" in line for line in target.server.log), "".join(target.server.log)
