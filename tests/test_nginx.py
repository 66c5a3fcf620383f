"""deploy/nginx.conf, as shipped, run by Debian's nginx in front of two instances on
PostgreSQL and Redis: the stream is unbuffered, heartbeats pass, a resume replays exactly
what was missed, WebSockets upgrade, and /metrics is not for the outside.

Only the upstream addresses and the listen port of the file are changed (as an operator
would); everything else is the file itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import websockets
from sqlalchemy import select

from app.db import Database
from app.models import Organization
from tests.factories import Scene, build_scene, token_for
from tests.redis_server import running_redis
from tests.server import Server, free_port, running_server
from tests.sse_client import open_stream

pytestmark = pytest.mark.server

CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "nginx.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
HEARTBEAT = 0.5


def site_config(upstreams: list[int], listen: int) -> str:
    """The shipped file with only the addresses and the port changed."""
    text = CONFIG.read_text()
    for shipped, port in zip(("127.0.0.1:8001", "127.0.0.1:8002"), upstreams, strict=True):
        assert text.count(f"server {shipped};") == 1, shipped
        text = text.replace(f"server {shipped};", f"server 127.0.0.1:{port};")
    assert text.count("listen 8080;") == 1
    return text.replace("listen 8080;", f"listen 127.0.0.1:{listen};")


@contextlib.contextmanager
def running_nginx(upstreams: list[int]) -> Iterator[str]:
    """nginx in the foreground with the site file included in its `http` block."""
    folder = Path(tempfile.mkdtemp(prefix="nginx-"))
    # nginx's workers run as `nobody` when it is started as root: they must reach the
    # temporary folders in here (a request body past 16 KB is written to one).
    folder.chmod(0o755)
    listen = free_port()
    (folder / "sprintboard.conf").write_text(site_config(upstreams, listen))
    temp = " ".join(
        f"{kind}_temp_path {folder}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (folder / "nginx.conf").write_text(
        f"daemon off;\nworker_processes 1;\npid {folder}/nginx.pid;\n"
        f"error_log {folder}/error.log warn;\n"
        "events { worker_connections 1024; }\n"
        f"http {{ access_log off; {temp} include {folder}/sprintboard.conf; }}\n"
    )
    process = subprocess.Popen(
        [
            NGINX,
            "-p",
            str(folder),
            "-e",
            str(folder / "error.log"),
            "-c",
            str(folder / "nginx.conf"),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_port(listen, process)
        yield f"http://127.0.0.1:{listen}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def wait_for_port(port: int, process: subprocess.Popen[str], within: float = 10.0) -> None:
    """nginx says nothing when it is ready: try to connect until it answers."""
    deadline = time.monotonic() + within
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited: {process.stderr.read() if process.stderr else ''}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        if time.monotonic() > deadline:
            raise RuntimeError("nginx did not start listening")
        time.sleep(0.05)


@dataclass
class Proxied:
    url: str
    db: Database
    scene: Scene
    tokens: dict[str, str]
    instances: list[Server]

    def auth(self, who: str = "bob") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    async def newest(self) -> int:
        async with self.db.read() as s:
            value = await s.scalar(
                select(Organization.last_event_id).where(Organization.id == self.scene.acme.org.id)
            )
            return int(value or 0)

    async def change(self, http: httpx.AsyncClient, number: int) -> None:
        """The `number`th change through the proxy: take, release, take, …"""
        task = self.scene.acme.tasks[0].id
        method = http.put if number % 2 == 0 else http.delete
        answer = await method(f"{self.url}/api/v1/tasks/{task}/ownership", headers=self.auth())
        assert answer.status_code == 200, answer.text


@pytest.fixture
async def proxied(postgres_url: str) -> AsyncIterator[Proxied]:
    if shutil.which(NGINX) is None:
        pytest.fail("nginx is not installed: `make test` installs it (make nginx)")
    db = Database(postgres_url)
    scene = await build_scene(db)
    tokens = {who: await token_for(db, scene.people[who]) for who in ("bob", "carol")}
    env = {"SPRINTBOARD_HEARTBEAT_SECONDS": str(HEARTBEAT), "FORWARDED_ALLOW_IPS": "127.0.0.1"}
    try:
        with (
            running_redis() as redis,
            running_server(postgres_url, REDIS_URL=redis.url, **env) as a,
            running_server(postgres_url, REDIS_URL=redis.url, **env) as b,
            running_nginx([a.port, b.port]) as front,
        ):
            yield Proxied(front, db, scene, tokens, [a, b])
    finally:
        await db.close()


async def test_the_stream_passes_at_once_with_its_heartbeats(proxied: Proxied) -> None:
    start = await proxied.newest()
    async with (
        httpx.AsyncClient(timeout=30) as http,
        open_stream(http, f"{proxied.url}/o/acme/events", proxied.auth("carol")) as stream,
    ):
        assert stream.response.headers["content-type"].startswith("text/event-stream")
        assert (await stream.next(wait=5)).kind == "retry"
        # A heartbeat is a few bytes: a buffering proxy would sit on it.
        assert (await stream.next(wait=HEARTBEAT * 4)).kind == "comment"
        for number in range(3):
            await proxied.change(http, number)
            event = await stream.next_event(wait=2)  # each at once, not with the next one
            assert event.id == start + number + 1


async def test_a_resume_through_the_proxy_replays_exactly_what_was_missed(
    proxied: Proxied,
) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        async with open_stream(http, f"{proxied.url}/o/acme/events", proxied.auth("carol")) as s:
            await s.next(wait=5)
            await proxied.change(http, 0)
            seen = (await s.next_event(wait=5)).id
        for number in range(1, 6):  # while the page is away
            await proxied.change(http, number)
        headers = {**proxied.auth("carol"), "Last-Event-ID": str(seen)}
        async with open_stream(http, f"{proxied.url}/o/acme/events", headers) as again:
            replayed = await again.events_until_quiet(wait=5)
    assert [m.id for m in replayed] == list(range(seen + 1, seen + 6))


async def test_the_json_websocket_upgrades_through_the_proxy(proxied: Proxied) -> None:
    start = await proxied.newest()
    url = proxied.url.replace("http", "ws") + "/api/v1/ws/tasks"
    async with (
        websockets.connect(url, additional_headers=proxied.auth("carol")) as ws,
        httpx.AsyncClient(timeout=30) as http,
    ):
        await proxied.change(http, 0)
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if message["type"] != "presence":
                break
    assert message["id"] == start + 1 and message["type"] == "ownership_taken"


async def test_metrics_are_not_served_to_the_outside(proxied: Proxied) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.get(f"{proxied.url}/metrics")
        health = await http.get(f"{proxied.url}/healthz")
    assert answer.status_code == 404
    assert health.status_code == 200 and health.json()["broker"] == "ok"


async def raw_exchange(url: str, request: bytes, wait: float = 10) -> bytes:
    """Send `request` to the proxy on a fresh connection; what comes back until it goes
    quiet or closes."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        received = b""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                while b"\r\n\r\n" not in received and (chunk := await reader.read(65536)):
                    received += chunk
        return received
    finally:
        writer.close()


@pytest.mark.parametrize("path", ["/healthz", "/metrics"])
async def test_an_h2c_upgrade_is_not_passed_on(proxied: Proxied, path: str) -> None:
    received = await raw_exchange(
        proxied.url,
        f"GET {path} HTTP/1.1\r\nHost: x\r\n".encode()
        + b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        + b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
    )
    status = received.split(b"\r\n", 1)[0].split()[:2]
    assert status == [b"HTTP/1.1", b"200" if path == "/healthz" else b"404"]


async def test_bodies_answered_early_never_cost_another_client_a_502(proxied: Proxied) -> None:
    """An unauthenticated 900 KB POST is refused (401) before the app needs its body;
    interleaved with bob's own requests on the same kept-alive upstream connections,
    every answer to bob is his."""
    story = proxied.scene.acme.stories[0].id
    body = b'{"title": "' + b"x" * (900 * 1024) + b'"}'
    bob: list[int] = []
    strangers: list[int] = []
    async with httpx.AsyncClient(timeout=30) as http:
        for number in range(80):
            stranger = await http.post(
                f"{proxied.url}/api/v1/stories/{story}/tasks",
                content=body,
                headers={"Content-Type": "application/json"},
            )
            strangers.append(stranger.status_code)
            answer = await http.get(f"{proxied.url}/api/v1/users/me", headers=proxied.auth())
            bob.append(answer.status_code)
            if number % 8 == 0:
                await proxied.change(http, number // 8)
    assert set(strangers) == {401}
    assert set(bob) == {200}


async def test_a_crafted_upgrade_value_is_not_passed_on_for_another_path(
    proxied: Proxied,
) -> None:
    """The proxy's rule reads the path and the Upgrade value together: a value that
    looks like a WebSocket route's path must not make /healthz an upgrade."""
    received = await raw_exchange(
        proxied.url,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
        b"Upgrade: websocket /api/v1/ws/tasks\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    assert received.split(b"\r\n", 1)[0].split()[:2] == [b"HTTP/1.1", b"200"]
