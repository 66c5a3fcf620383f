"""What an operator sees, from real server processes: /metrics (names, types, counters
moving, several workers added up, who may read it), one log line per request (JSON, no
secret in it), request ids, and X-Forwarded-* believed only from a trusted proxy."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import re
from pathlib import Path

import httpx
import pytest
import websockets

from app import logs
from app.server import one_line_for_dropped_connections
from tests.factories import ServedScene, served_scene
from tests.redis_server import running_redis
from tests.server import Server, running_server
from tests.sse_client import open_stream

pytestmark = pytest.mark.server

NAMES = {
    "sprintboard_streams_open": "gauge",
    "sprintboard_events_total": "counter",
    "sprintboard_deliveries_total": "counter",
    "sprintboard_fanout_lag_seconds": "histogram",
    "sprintboard_http_requests_total": "counter",
    "sprintboard_http_request_duration_seconds": "histogram",
}


@pytest.fixture
async def setup(tmp_path: Path) -> ServedScene:
    return await served_scene(tmp_path / "ops.db")


def value(text: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        sample, _, number = line.rpartition(" ")
        if sample.split("{")[0] != name:
            continue
        if all(f'{k}="{v}"' in sample for k, v in labels.items()):
            total += float(number)
    return total


async def scrape(http: httpx.AsyncClient, server: Server, **headers: str) -> str:
    answer = await http.get(f"{server.url}/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return answer.text


async def take_and_release(http: httpx.AsyncClient, server: Server, setup: ServedScene) -> None:
    url = f"{server.url}/api/v1/tasks/{setup.scene.acme.tasks[0].id}/ownership"
    assert (await http.put(url, headers=setup.auth())).status_code == 200
    assert (await http.delete(url, headers=setup.auth())).status_code == 200


async def test_metrics_have_their_names_and_types_and_move(setup: ServedScene) -> None:
    with running_server(setup.database_url) as server:
        async with httpx.AsyncClient(timeout=30) as http:
            before = await scrape(http, server)
            for name, kind in NAMES.items():
                assert f"# TYPE {name} {kind}" in before, name
            async with open_stream(http, f"{server.url}/o/acme/events", setup.auth("carol")) as s:
                await s.next()
                await take_and_release(http, server, setup)
                await s.next_event()
                await s.next_event()
                during = await scrape(http, server)
            after = await scrape(http, server)
    assert value(during, "sprintboard_streams_open") == 1
    assert value(after, "sprintboard_streams_open") == 0
    assert value(after, "sprintboard_events_total") - value(before, "sprintboard_events_total") == 2
    assert value(after, "sprintboard_deliveries_total") >= 2
    assert value(after, "sprintboard_fanout_lag_seconds_count") >= 2
    route = "/api/v1/tasks/<int:task_id>/ownership"
    assert (
        value(after, "sprintboard_http_requests_total", route=route, method="PUT", status="200")
        == 1
    )
    assert value(after, "sprintboard_http_request_duration_seconds_count", route=route) == 2


async def test_metrics_add_up_every_worker(setup: ServedScene) -> None:
    with (
        running_redis() as redis,
        running_server(setup.database_url, workers=2, REDIS_URL=redis.url) as server,
    ):
        async with httpx.AsyncClient(timeout=30) as http:
            for _ in range(20):  # spread over both workers by the kernel
                assert (await http.get(f"{server.url}/healthz")).status_code == 200
            async with (
                httpx.AsyncClient(timeout=30) as other,
                open_stream(other, f"{server.url}/o/acme/events", setup.auth("carol")) as one,
                open_stream(http, f"{server.url}/o/acme/events", setup.auth("bob")) as two,
            ):
                await one.next()
                await two.next()
                text = await scrape(http, server)
    assert value(text, "sprintboard_http_requests_total", route="/healthz") == 20
    assert value(text, "sprintboard_streams_open") == 2


async def test_metrics_are_for_this_machine_or_the_token_holder(setup: ServedScene) -> None:
    with running_server(setup.database_url, METRICS_TOKEN="s3cret-metrics") as server:
        async with httpx.AsyncClient(timeout=30) as http:
            assert (await http.get(f"{server.url}/metrics")).status_code == 404
            wrong = {"Authorization": "Bearer nope"}
            assert (await http.get(f"{server.url}/metrics", headers=wrong)).status_code == 404
            await scrape(http, server, Authorization="Bearer s3cret-metrics")
    # Without a token, only this machine, asked directly: whatever a proxy forwards (or a
    # client claims to forward, even "from 127.0.0.1") is from outside.
    for trust in ("127.0.0.1", "*", ""):
        with running_server(setup.database_url, FORWARDED_ALLOW_IPS=trust) as server:
            async with httpx.AsyncClient(timeout=30) as http:
                for claimed in ("203.0.113.7", "127.0.0.1"):
                    outside = {"X-Forwarded-For": claimed}
                    answer = await http.get(f"{server.url}/metrics", headers=outside)
                    assert answer.status_code == 404, (trust, claimed)
                await scrape(http, server)


def request_lines(server: Server) -> list[dict[str, object]]:
    lines = []
    for line in server.log:
        if line.startswith("{"):
            record = json.loads(line)
            if record["logger"] == "app.requests":
                lines.append(record)
    return lines


async def test_one_json_line_per_request_with_no_secret_in_it(setup: ServedScene) -> None:
    token = setup.tokens["bob"]
    with running_server(setup.database_url, LOG_FORMAT="json") as server:
        async with httpx.AsyncClient(timeout=30) as http:
            answer = await http.get(f"{server.url}/api/v1/users/me", headers=setup.auth())
            await take_and_release(http, server, setup)
            assert (await http.get(f"{server.url}/o/acme/nope")).status_code == 404
        url = server.url.replace("http", "ws") + f"/api/v1/ws/tasks?token={token}"
        async with websockets.connect(url) as ws:
            await ws.close()
        server.stop()  # every line written
    lines = request_lines(server)
    me = next(r for r in lines if r["route"] == "/api/v1/users/me")
    assert me["request_id"] == answer.headers["X-Request-Id"]
    assert me["method"] == "GET" and me["status"] == 200 and me["user_id"] == setup.scene.bob.id
    assert isinstance(me["duration_ms"], float)
    take = next(r for r in lines if r["method"] == "PUT")
    assert (
        take["route"] == "/api/v1/tasks/<int:task_id>/ownership"
        and take["org_id"] == setup.scene.acme.org.id
    )
    assert any(r["route"] == "(no route)" and r["status"] == 404 for r in lines)
    assert any(r["method"] == "WEBSOCKET" and r["route"] == "/api/v1/ws/tasks" for r in lines)
    assert len({r["request_id"] for r in lines}) == len(lines)
    everything = "".join(server.log)
    assert token not in everything and token[:12] not in everything


async def test_forwarded_headers_count_only_from_a_trusted_proxy(setup: ServedScene) -> None:
    forwarded = {
        "X-Forwarded-For": "203.0.113.7",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "board.example.com",
        "X-Request-Id": "from-the-proxy-42",
    }
    origin = "https://board.example.com"
    for trusted in (False, True):
        env = {"LOG_FORMAT": "json", "FORWARDED_ALLOW_IPS": "127.0.0.1" if trusted else ""}
        with running_server(setup.database_url, **env) as server:
            async with httpx.AsyncClient(timeout=30) as http:
                answer = await http.get(f"{server.url}/healthz", headers=forwarded)
            # A browser's WebSocket from https://board.example.com, through TLS termination.
            url = server.url.replace("http", "ws") + "/api/v1/ws/tasks"
            headers = {**setup.auth(), **forwarded}
            try:
                async with websockets.connect(url, additional_headers=headers, origin=origin):
                    accepted = True
            except websockets.InvalidStatus as refused:
                accepted = False
                assert refused.response.status_code == 403
            server.stop()
        health = next(r for r in request_lines(server) if r["route"] == "/healthz")
        assert (health["client"] == "203.0.113.7") is trusted
        assert (answer.headers["X-Request-Id"] == "from-the-proxy-42") is trusted
        assert re.fullmatch(r"[A-Za-z0-9._-]+", answer.headers["X-Request-Id"])
        assert accepted is trusted


def test_a_process_that_starts_several_apps_writes_each_line_once(capsys) -> None:
    """The tests (and anything embedding the app) start one app after another in a
    process: each start configures the logs, and a line must still appear once."""
    app_log = logging.getLogger("app")
    before = (list(app_log.handlers), app_log.level, app_log.propagate)
    try:
        for _ in range(3):
            logs.configure(fmt="json")
        logs.log_request(method="GET", route="/", status=200, duration_ms=1.0)
        lines = capsys.readouterr().err.splitlines()
        assert [json.loads(line)["route"] for line in lines] == ["/"]
    finally:
        for handler in list(app_log.handlers):
            app_log.removeHandler(handler)
        for handler in before[0]:
            app_log.addHandler(handler)
        app_log.setLevel(before[1])
        app_log.propagate = before[2]


def test_only_a_connection_the_kernel_gave_up_on_is_one_quiet_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The loop's handler says "connection dropped" for a timed-out or reset socket, and
    leaves our own errors (an asyncio time-out has no errno) to the default handler."""
    loop = asyncio.new_event_loop()
    try:
        with caplog.at_level(logging.INFO):
            dropped = TimeoutError(errno.ETIMEDOUT, "Connection timed out")
            one_line_for_dropped_connections(loop, {"message": "cb", "exception": dropped})
            one_line_for_dropped_connections(loop, {"message": "ours", "exception": TimeoutError()})
    finally:
        loop.close()
    quiet = [r for r in caplog.records if "connection dropped" in r.getMessage()]
    loud = [r for r in caplog.records if r.getMessage() == "ours"]
    assert len(quiet) == 1 and quiet[0].exc_info is None
    assert len(loud) == 1 and loud[0].exc_info is not None
