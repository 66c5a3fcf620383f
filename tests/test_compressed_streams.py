"""Compressed streams, against a real server: a gzip stream decoded incrementally
(`zlib.decompressobj(31)`) carries exactly what the plain stream carries, across
heartbeats, a resume with Last-Event-ID, a reset and a SIGTERM; and two streams are sent
byte-identical compressed bytes for one event (each frame compressed once)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import httpx
import pytest
from werkzeug.http import parse_accept_header

from app.events.compress import GZIP_HEADER, deflated, wants_gzip
from app.live import sse
from app.live.streams import SHUTDOWN_RETRY_MS
from tests.factories import ServedScene, served_scene
from tests.server import Server, running_server
from tests.sse_client import Message, Stream, open_stream

pytestmark = pytest.mark.server

GZIP = {"Accept-Encoding": "gzip"}
WINDOW = 3  # the replay window: a cursor further behind gets a reset


@pytest.fixture
async def setup(tmp_path: Path) -> ServedScene:
    return await served_scene(tmp_path / "compressed.db")


async def changes(http: httpx.AsyncClient, server: Server, setup: ServedScene, pairs: int) -> None:
    """`pairs` takes and releases of one task through the API: two events each."""
    url = f"{server.url}/api/v1/tasks/{setup.scene.acme.tasks[0].id}/ownership"
    for _ in range(pairs):
        assert (await http.put(url, headers=setup.auth())).status_code == 200
        assert (await http.delete(url, headers=setup.auth())).status_code == 200


def seen(messages: list[Message]) -> list[tuple[str, int | None, str | None, str]]:
    return [(m.kind, m.id, m.event, m.data) for m in messages]


async def events(stream: Stream, n: int) -> list[Message]:
    return [await stream.next_event() for _ in range(n)]


async def test_a_gzip_stream_carries_exactly_what_the_plain_stream_carries(
    setup: ServedScene,
) -> None:
    env = {"SPRINTBOARD_HEARTBEAT_SECONDS": "0.3", "SPRINTBOARD_REPLAY_WINDOW": str(WINDOW)}
    with running_server(setup.database_url, **env) as server:
        events_url = f"{server.url}/o/acme/events"
        async with httpx.AsyncClient(timeout=30) as http, contextlib.AsyncExitStack() as open_:

            async def both(headers: dict[str, str] | None = None) -> tuple[Stream, Stream]:
                gz = await open_.enter_async_context(
                    open_stream(
                        http, events_url, setup.auth(**GZIP, **(headers or {})), inflate=True
                    )
                )
                plain = await open_.enter_async_context(
                    open_stream(http, f"{events_url}?nocompress=1", setup.auth(**(headers or {})))
                )
                assert gz.response.headers["Content-Encoding"] == "gzip"
                assert "Content-Encoding" not in plain.response.headers
                assert gz.response.headers["Vary"] == "Accept-Encoding"
                assert plain.response.headers["Vary"] == "Accept-Encoding"
                hello = [await gz.next(), await plain.next()]
                assert [m.kind for m in hello] == ["retry", "retry"]
                return gz, plain

            # Live, with heartbeats between the events.
            gz, plain = await both()
            await changes(http, server, setup, 2)
            live = await events(plain, 4)
            assert seen(await events(gz, 4)) == seen(live)
            assert (await gz.next()).kind == "comment"  # a heartbeat, decoded
            # A resume from the second event's id replays the third and fourth.
            resumed_gz, resumed_plain = await both({"Last-Event-ID": str(live[1].id)})
            replayed = await events(resumed_gz, 2)
            assert seen(replayed) == seen(await events(resumed_plain, 2)) == seen(live[2:])
            # A cursor beyond the replay window: a reset, then live again.
            behind = {"Last-Event-ID": str(live[0].id - WINDOW - 1)}
            far_gz, far_plain = await both(behind)
            reset = [await far_gz.next_event(), await far_plain.next_event()]
            assert reset[0].event == "reset" and seen(reset[:1]) == seen(reset[1:])
            await changes(http, server, setup, 1)
            for stream_pair in ((gz, plain), (resumed_gz, resumed_plain), (far_gz, far_plain)):
                a, b = stream_pair
                assert seen(await events(a, 2)) == seen(await events(b, 2))
            # SIGTERM: every stream's last message says when to come back, then it ends.
            await asyncio.to_thread(server.stop)
            for stream in (gz, resumed_gz, far_gz, plain):
                last = [m for m in await drain(stream) if m.kind == "retry"]
                assert last and SHUTDOWN_RETRY_MS[0] <= last[-1].retry <= SHUTDOWN_RETRY_MS[1]


async def drain(stream: Stream) -> list[Message]:
    """Every message until the server ends the stream."""
    got = []
    with contextlib.suppress(EOFError, httpx.HTTPError):
        while True:
            got.append(await stream.next(wait=15))
    return got


async def test_two_streams_are_sent_the_same_compressed_bytes_for_an_event(
    setup: ServedScene,
) -> None:
    with running_server(setup.database_url) as server:
        events_url = f"{server.url}/o/acme/events"
        async with httpx.AsyncClient(timeout=30) as http, contextlib.AsyncExitStack() as open_:
            streams = [
                await open_.enter_async_context(
                    open_stream(http, events_url, setup.auth(who, **GZIP), inflate=True)
                )
                for who in ("bob", "carol")
            ]
            for stream in streams:
                assert (await stream.next()).kind == "retry"
            await changes(http, server, setup, 1)
            got = [await events(stream, 2) for stream in streams]
            assert seen(got[0]) == seen(got[1])
            bodies = [b"".join(stream.raw) for stream in streams]
            # Nothing differs between the two streams' bytes: the same header and hello,
            # and each event's one compressed copy (what deflating it alone gives).
            assert bodies[0] == bodies[1]
            assert bodies[0].startswith(GZIP_HEADER)
            for message in got[0]:
                plain = sse.encode(data=message.data, event=message.event, id=message.id)
                assert deflated(plain) in bodies[0]


@pytest.mark.parametrize(
    ("accept", "args", "gzip"),
    [
        ("gzip, deflate, br, zstd", {}, True),  # Chromium
        ("gzip, deflate, br, zstd", {"nocompress": "1"}, False),
        ("", {}, False),
        ("identity", {}, False),
        ("br", {}, False),
        ("gzip;q=0, *", {}, False),
        ("*", {}, True),
        ("x-gzip", {}, True),
        ("gzip;q=0.2", {}, True),
        ("gzip;q=nonsense", {}, False),
        ("GZIP", {}, True),
        ("x-gzip;q=0, *", {}, False),
    ],
)
def test_gzip_is_sent_to_whoever_accepts_it_and_did_not_opt_out(
    accept: str, args: dict[str, str], gzip: bool
) -> None:
    assert wants_gzip(parse_accept_header(accept), args) is gzip
