"""Thousands of server-sent-event subscribers in one process, cheaply.

Each subscriber is a bare asyncio protocol: it sends its GET, checks the status line,
and notes when it first sees each `id:` line. No SSE parser, no per-message objects:
the load generator shares two cores with the server it measures.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
import zlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import cast

# An SSE message starts with its `id:` line, right after a line break (the end of the
# previous message or of a chunk-size line). Payload lines all start with `data:`.
_ID_LINE = re.compile(rb"\nid: (\d+)\r?\n")
_TAIL = 32  # bytes kept between reads, so an id line split across two reads is seen
# A presence notice has no id: its `event:` line comes first.
_PRESENCE_LINE = re.compile(rb"\nevent: presence\r?\n")


class Dechunked:
    """HTTP/1.1 chunked transfer decoding, fed bytes as they arrive. A gzip stream must
    be inflated without the chunk lines; a plain one is scanned with them in place."""

    def __init__(self) -> None:
        self.buffer = b""
        self.left = 0  # bytes still to come of the current chunk

    def feed(self, data: bytes) -> bytes:
        self.buffer += data
        out = []
        while self.buffer:
            if self.left == 0:
                end = self.buffer.find(b"\r\n")
                if end < 0:
                    break
                line, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
                if line:  # else the line break that ends a chunk's data
                    self.left = int(line.split(b";")[0], 16)
                continue
            piece = self.buffer[: self.left]
            out.append(piece)
            self.left -= len(piece)
            self.buffer = self.buffer[len(piece) :]
        return b"".join(out)


class Stream(asyncio.Protocol):
    """One subscriber's connection."""

    def __init__(self, crowd: Crowd) -> None:
        self.crowd = crowd
        # A gzip stream: its body de-chunked, then inflated as it comes.
        self.chunks = Dechunked() if crowd.gzip else None
        self.inflater = zlib.decompressobj(31) if crowd.gzip else None
        self.transport: asyncio.Transport | None = None
        self.head = b""
        self.open = False
        self.subscribed = False
        self.tail = b""
        self.last_id = 0
        self.bytes = 0
        self.notices = 0
        self.last_notice = 0.0
        # Done once the server answered: subscribed, refused or hung up.
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def _settle(self) -> None:
        if not self.ready.done():
            self.ready.set_result(None)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's TCP transport
        self.transport.write(self.crowd.next_request())

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self.bytes += len(data)
        self.crowd.wire_bytes += len(data)
        if not self.open:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            status, head = self.head[9:12], self.head[:end].lower()
            data, self.head = self.head[end + 4 :], b""
            if status != b"200":
                self._settle()
                self.crowd.refused(status.decode("latin-1"))
                assert self.transport is not None
                self.transport.close()
                return
            self.open = True
            if self.crowd.gzip and b"content-encoding: gzip" not in head:
                self._settle()
                self.crowd.refused("not gzip")  # asked for gzip, answered plain
                assert self.transport is not None
                self.transport.close()
                return
        if self.chunks is not None and self.inflater is not None:
            data = self.inflater.decompress(self.chunks.feed(data))
        if not self.subscribed and b"retry:" in data:
            # The server sends `retry:` once the stream is subscribed.
            self.subscribed = True
            self._settle()
            self.crowd.subscribed(now)
        scan = self.tail + data
        for match in _ID_LINE.finditer(scan):
            if match.end() <= len(self.tail):
                continue  # wholly inside the kept tail: counted with the previous read
            event_id = int(match.group(1))
            if event_id > self.last_id:
                self.last_id = event_id
                self.crowd.received(event_id, now)
            else:  # sent twice, or out of order: the server broke its promise
                self.crowd.repeats += 1
        if self.crowd.count_presence:
            for match in _PRESENCE_LINE.finditer(scan):
                if match.end() > len(self.tail):
                    self.notices += 1
                    self.last_notice = now
                    self.crowd.noticed()
        self.tail = scan[-_TAIL:]

    def connection_lost(self, exc: Exception | None) -> None:
        self._settle()
        self.crowd.lost(self)


class Crowd:
    """N subscribers of one stream URL, and what each of them received when."""

    def __init__(
        self,
        host: str,
        port: int,
        path: str,
        headers: dict[str, str],
        *,
        tokens: Sequence[str] = (),
        count_presence: bool = False,
        gzip: bool = False,
    ) -> None:
        """Every stream sends the same request, or with `tokens`, each its own bearer
        token in turn (as many people). With `gzip`, each accepts a gzip stream, as
        browsers do, and inflates it."""
        self.host, self.port = host, port
        self.gzip = gzip
        self.wire_bytes = 0  # every byte every stream received, as sent
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Accept: text/event-stream"]
        if gzip:
            lines.append("Accept-Encoding: gzip")
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.request = ("\r\n".join(lines) + "\r\n\r\n").encode()
        self._requests = itertools.cycle(
            [
                ("\r\n".join([*lines, f"Authorization: Bearer {t}"]) + "\r\n\r\n").encode()
                for t in tokens
            ]
            or [self.request]
        )
        self.count_presence = count_presence
        self.streams: list[Stream] = []
        self.subscribed_count = 0
        self.first_subscribed = self.last_subscribed = 0.0
        self.refusals: dict[str, int] = defaultdict(int)
        self.connect_errors: dict[str, int] = defaultdict(int)
        self.lost_early = 0  # connections the server closed while we still listened
        self.repeats = 0  # events a stream received again or out of order
        self.closing = False
        self.arrivals: dict[int, list[float]] = defaultdict(list)
        self._waiting: tuple[Callable[[], bool], asyncio.Future[None]] | None = None

    def next_request(self) -> bytes:
        return next(self._requests)

    # -- callbacks from the streams
    def noticed(self) -> None:
        self._check()

    def subscribed(self, now: float) -> None:
        self.subscribed_count += 1
        self.first_subscribed = self.first_subscribed or now
        self.last_subscribed = now
        self._check()

    def received(self, event_id: int, now: float) -> None:
        self.arrivals[event_id].append(now)
        self._check()

    def refused(self, status: str) -> None:
        self.refusals[status] += 1
        self._check()

    def lost(self, stream: Stream) -> None:
        if not self.closing:
            self.lost_early += 1
            self._check()

    # -- waiting for a condition without polling
    def _check(self) -> None:
        if self._waiting is not None:
            condition, future = self._waiting
            if not future.done() and condition():
                future.set_result(None)

    async def wait_until(self, condition: Callable[[], bool], within: float) -> bool:
        """Wait until `condition()` holds (checked on every arrival); False on timeout."""
        if condition():
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting = (condition, future)
        try:
            await asyncio.wait_for(future, within)
            return True
        except TimeoutError:
            return False
        finally:
            self._waiting = None

    # -- the crowd as a whole
    @property
    def failed(self) -> int:
        return sum(self.refusals.values()) + sum(self.connect_errors.values())

    async def connect(self, count: int, *, concurrency: int = 500, within: float = 60.0) -> float:
        """Open `count` streams (at most `concurrency` handshakes at once); returns the
        seconds until every one of them was subscribed (or the timeout passed)."""
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(concurrency)
        started = time.perf_counter()

        async def one() -> None:
            async with gate:
                try:
                    _transport, stream = await loop.create_connection(
                        lambda: Stream(self), self.host, self.port
                    )
                except OSError as error:
                    self.connect_errors[type(error).__name__] += 1
                    self._check()
                    return
                self.streams.append(stream)
                # Hold the gate until the server answered, so handshakes stay bounded
                # (and the server's accept queue never overflows).
                await stream.ready

        await asyncio.gather(*(one() for _ in range(count)))
        await self.wait_until(lambda: self.subscribed_count + self.failed >= count, within)
        return (self.last_subscribed or time.perf_counter()) - started

    def close(self) -> None:
        self.closing = True
        for stream in self.streams:
            if stream.transport is not None:
                stream.transport.close()
