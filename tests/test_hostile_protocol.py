"""Hostile clients, second round: what they send on the wire, against a real Hypercorn.

WebSocket floods (big messages, many messages), answers given before a request's body
arrived, a request framed two ways at once, an HTTP/2 upgrade in cleartext, a WebSocket
handshake on a route that is not one, made-up methods in the metrics, and a stalled
connection's log line. Each over raw sockets (or a plain WebSocket client), each
checked against what the server answers, keeps or logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from app import MAX_BODY_BYTES
from tests.factories import ServedScene, served_scene
from tests.server import Server, running_server

pytestmark = pytest.mark.server

WEBSOCKET_ROUTES = ["/api/v1/ws/tasks", "/o/acme/ws"]
MiB = 1024 * 1024


@dataclass
class Target:
    server: Server
    served: ServedScene

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.server.port)

    def ws_url(self, path: str) -> str:
        return self.server.url.replace("http", "ws") + path

    def rss_bytes(self) -> int:
        """The serving process's resident memory (one worker: the process itself)."""
        status = Path(f"/proc/{self.server.process.pid}/status").read_text()
        kib = re.search(r"VmRSS:\s+(\d+) kB", status)
        assert kib is not None
        return int(kib.group(1)) * 1024


@pytest.fixture
async def target(tmp_path: Path) -> AsyncIterator[Target]:
    served = await served_scene(tmp_path / "hostile.db")
    with running_server(served.database_url) as server:
        yield Target(server, served)


async def exchange(target: Target, raw: bytes, *, wait: float = 10) -> bytes:
    """Send `raw` on a fresh connection and read until the server closes it (or `wait`
    passes with nothing more coming)."""
    reader, writer = await asyncio.open_connection(*target.address)
    try:
        writer.write(raw)
        await writer.drain()
        received = b""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                while chunk := await reader.read(65536):
                    received += chunk
        return received
    finally:
        writer.close()


async def read_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One HTTP/1.1 response with a Content-Length: its head (lowercased) and body."""
    head = (await reader.readuntil(b"\r\n\r\n")).lower()
    match = re.search(rb"content-length: *(\d+)", head)
    body = await reader.readexactly(int(match.group(1))) if match else b""
    return head, body


# --- WebSockets: what clients send is read and dropped, within limits -----------------


async def until_closed(ws: websockets.ClientConnection, within: float = 10) -> None:
    """Read (and drop) what the server sends until it closes the socket, or `within`
    passes; `ws.close_code` then says how it ended (1006 if it did not)."""
    with contextlib.suppress(ConnectionClosed, TimeoutError):
        async with asyncio.timeout(within):
            while True:
                await ws.recv()


@pytest.mark.parametrize("path", WEBSOCKET_ROUTES)
async def test_a_websocket_message_past_64_kib_closes_1009_and_memory_stays_flat(
    target: Target, path: str
) -> None:
    headers = target.served.auth("victor")  # a viewer may open both
    before = target.rss_bytes()
    # Uncompressed: what is measured is what the server keeps (with permessage-deflate
    # it also inflates each frame before it can count it: see docs/security.md).
    async with websockets.connect(
        target.ws_url(path), additional_headers=headers, compression=None, close_timeout=2
    ) as ws:
        # 20 × 8 MiB: before the rule each was queued in full until the socket closed.
        with contextlib.suppress(ConnectionClosed):
            for _ in range(20):
                await ws.send(b"x" * (8 * MiB))
        await until_closed(ws)
    assert ws.close_code == 1009
    grown = target.rss_bytes() - before
    assert grown < 40 * MiB, f"the server grew by {grown / MiB:.0f} MiB"


@pytest.mark.parametrize("path", WEBSOCKET_ROUTES)
async def test_more_than_100_websocket_messages_a_minute_close_1008(
    target: Target, path: str
) -> None:
    headers = target.served.auth("bob")
    async with websockets.connect(target.ws_url(path), additional_headers=headers) as ws:
        with contextlib.suppress(ConnectionClosed):
            for number in range(150):
                await ws.send(f"hello {number}")
        await until_closed(ws)
    assert ws.close_code == 1008


async def test_a_compressed_websocket_message_past_64_kib_closes_1009(target: Target) -> None:
    headers = target.served.auth("victor")
    url = target.ws_url("/api/v1/ws/tasks")
    async with websockets.connect(url, additional_headers=headers) as ws:
        with contextlib.suppress(ConnectionClosed):
            await ws.send(b"x" * MiB)
        await until_closed(ws)
    assert ws.close_code == 1009


async def test_a_websocket_that_sends_within_the_limits_keeps_getting_events(
    target: Target,
) -> None:
    headers = target.served.auth("bob")
    task = target.served.scene.acme.tasks[0]
    async with (
        websockets.connect(target.ws_url("/api/v1/ws/tasks"), additional_headers=headers) as ws,
        httpx.AsyncClient(base_url=target.server.url, timeout=10) as http,
    ):
        for number in range(50):
            await ws.send("x" * (60 * 1024) if number % 10 == 0 else f"ping {number}")
        taken = await http.put(f"/api/v1/tasks/{task.id}/ownership", headers=headers)
        assert taken.status_code == 200
        async with asyncio.timeout(10):
            while '"ownership_taken"' not in (text := await ws.recv()):
                pass
    assert json.loads(text)["task_id"] == str(task.id)


# --- Answers given before the body arrived ---------------------------------------------

EARLY_ANSWERS = [
    # (request line, what the app answers before reading the body)
    ("POST /api/v1/stories/1/tasks", b"401"),  # no credentials
    ("POST /api/v1/nowhere", b"404"),
    ("PUT /healthz", b"405"),
]


@pytest.mark.parametrize(("line", "status"), EARLY_ANSWERS)
async def test_an_early_answer_keeps_the_connection_usable(
    target: Target, line: str, status: bytes
) -> None:
    body = b'{"title": "' + b"x" * (900 * 1024) + b'"}'
    reader, writer = await asyncio.open_connection(*target.address)
    try:
        writer.write(
            f"{line} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n".encode()
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        await writer.drain()
        writer.write(body)
        await writer.drain()
        head, _ = await asyncio.wait_for(read_response(reader), 10)
        assert head.startswith(b"http/1.1 " + status)
        if b"connection: close" not in head:
            # Kept alive: the next request on it is answered.
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            again, _ = await asyncio.wait_for(read_response(reader), 10)
            assert again.startswith(b"http/1.1 200")
        else:
            pytest.fail("the body was under the limit: it should have been read, not refused")
    finally:
        writer.close()


async def test_an_early_answer_to_a_body_past_the_limit_says_connection_close(
    target: Target,
) -> None:
    size = MAX_BODY_BYTES + 512 * 1024
    reader, writer = await asyncio.open_connection(*target.address)
    try:
        writer.write(
            b"POST /api/v1/nowhere HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
            + f"Content-Length: {size}\r\n\r\n".encode()
        )
        # Past the limit, and never all of it: the answer comes before the body is in
        # however fast or slow the server is (a whole body read before the answer would
        # leave nothing to close the connection for).
        with contextlib.suppress(ConnectionError):
            writer.write(b"y" * (MAX_BODY_BYTES + 256 * 1024))
            await writer.drain()
        head, _ = await asyncio.wait_for(read_response(reader), 10)
    finally:
        writer.close()
    assert head.startswith(b"http/1.1 404")
    assert b"connection: close" in head


# --- Framing and protocol switches -----------------------------------------------------


async def test_content_length_with_transfer_encoding_is_refused_and_closed(
    target: Target,
) -> None:
    received = await exchange(
        target,
        b"POST /api/v1/nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    head = received.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(b"http/1.1 400")
    assert b"connection: close" in head
    assert received.count(b"HTTP/1.1 ") == 1  # the request behind it was not answered


async def test_nothing_is_served_over_an_h2c_upgrade(target: Target) -> None:
    """Hypercorn switches to HTTP/2 on `Upgrade: h2c` before the app sees the request;
    the app answers nothing over it (here: /metrics, which a loopback client may read)."""
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    settings = client.initiate_upgrade_connection()
    reader, writer = await asyncio.open_connection(*target.address)
    statuses: list[bytes] = []
    try:
        writer.write(
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            b"Upgrade: h2c\r\nHTTP2-Settings: " + settings + b"\r\n\r\n"
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        if head.startswith(b"HTTP/1.1 101"):
            writer.write(client.data_to_send())
            await writer.drain()
            async with asyncio.timeout(10):
                while not statuses:
                    data = await reader.read(65536)
                    if not data:
                        break
                    for event in client.receive_data(data):
                        if isinstance(event, h2.events.ResponseReceived):
                            statuses.append(dict(event.headers)[b":status"])
                    writer.write(client.data_to_send())
            assert statuses == [b"400"], statuses
        else:
            assert not head.startswith(b"HTTP/1.1 200")
    finally:
        writer.close()


async def test_a_websocket_handshake_on_a_plain_route_gets_an_ordinary_answer(
    target: Target,
) -> None:
    handshake = (
        b"Host: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    )
    answers = {b"/api/v1/users/me": b"400", b"/healthz": b"400", b"/nowhere": b"404"}
    for path, status in answers.items():
        received = await exchange(target, b"GET " + path + b" HTTP/1.1\r\n" + handshake + b"\r\n")
        assert received.startswith(b"HTTP/1.1 " + status), (path, received[:80])
    assert not any("Traceback" in line for line in target.server.log), "".join(target.server.log)


async def test_a_websocket_over_cleartext_http2_is_refused(target: Target) -> None:
    """HTTP/2's extended CONNECT (RFC 8441) opens a WebSocket on a stream: refused too."""
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    reader, writer = await asyncio.open_connection(*target.address)
    statuses: list[bytes] = []
    try:
        writer.write(client.data_to_send())
        await writer.drain()
        async with asyncio.timeout(10):
            while not client.remote_settings.enable_connect_protocol:
                for _event in client.receive_data(await reader.read(65536)):
                    pass
                writer.write(client.data_to_send())
        headers = [
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", "http"),
            (":path", "/api/v1/ws/tasks"),
            (":authority", "x"),
            ("sec-websocket-version", "13"),
            ("authorization", target.served.auth("bob")["Authorization"]),
        ]
        client.send_headers(1, headers)
        writer.write(client.data_to_send())
        async with asyncio.timeout(10):
            while not statuses:
                for event in client.receive_data(await reader.read(65536)):
                    if isinstance(event, h2.events.ResponseReceived):
                        statuses.append(dict(event.headers)[b":status"])
                writer.write(client.data_to_send())
    finally:
        writer.close()
    assert statuses == [b"400"]


async def test_a_websocket_message_just_past_64_kib_closes_1009(target: Target) -> None:
    headers = target.served.auth("bob")
    url = target.ws_url("/o/acme/ws")
    async with websockets.connect(url, additional_headers=headers, compression=None) as ws:
        await ws.send(b"x" * (64 * 1024 + 1))
        await until_closed(ws)
    assert ws.close_code == 1009


async def test_an_early_answer_to_a_body_that_stops_coming_is_not_held(target: Target) -> None:
    """A client that sends a byte of its body and stops gets its answer in a moment,
    not after the whole body time limit, and is told the connection closes."""
    reader, writer = await asyncio.open_connection(*target.address)
    started = asyncio.get_running_loop().time()
    try:
        writer.write(
            b"POST /api/v1/stories/1/tasks HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
        )
        await writer.drain()
        head, _ = await asyncio.wait_for(read_response(reader), 10)
    finally:
        writer.close()
    assert head.startswith(b"http/1.1 401")
    assert b"connection: close" in head
    assert asyncio.get_running_loop().time() - started < 8  # the idle wait, not 30 s


# --- Metrics -------------------------------------------------------------------------


async def test_made_up_methods_add_no_metric_series(target: Target) -> None:
    async with httpx.AsyncClient(base_url=target.server.url, timeout=10) as http:
        before = (await http.get("/metrics")).text
        for number in range(50):
            await http.request(f"MADEUP{number}", "/healthz")
            await http.request("GET", f"/nowhere/{number}")
        await http.request("X" * 3000, "/healthz")
        after = (await http.get("/metrics")).text
    assert "MADEUP" not in after and "XXXX" not in after
    assert 'method="other"' in after
    assert "/nowhere/" not in after
    # Series added: only what the fixed sets allow (other, the unrouted 404, /metrics).
    assert len(after) - len(before) < 20_000
