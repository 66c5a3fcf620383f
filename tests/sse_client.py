"""A small SSE reader over httpx that also reports comments and retry lines (tests only)."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import re
import time
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx


@dataclass
class Message:
    """One SSE message; `kind` is "event", "presence", "comment" or "retry"."""

    kind: str
    id: int | None = None
    event: str | None = None
    data: str = ""
    retry: int | None = None


class Stream:
    """The messages of one response, read by a task of their own: a `next()` that times
    out cancels only its wait, never a read half-way through a message (which would
    leave the response unable to close)."""

    def __init__(self, response: httpx.Response, *, inflate: bool = False) -> None:
        """With `inflate`, the body is read as sent (`raw`, every chunk) and decoded
        here, incrementally, as a gzip stream (`zlib.decompressobj(31)`), not by httpx."""
        self.response = response
        self.inflate = inflate
        self.raw: list[bytes] = []
        self._messages: asyncio.Queue[Message | Exception] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read_all())

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    async def _read(self) -> Message:
        item = await self._messages.get()
        if isinstance(item, Exception):
            self._messages.put_nowait(item)  # ended: every later read says so too
            raise item
        return item

    async def next(self, wait: float = 10.0) -> Message:
        """The next message (comments and retry lines included, presence notices not:
        they come whenever someone opens or closes a page), or TimeoutError."""
        return await self._next_where(lambda m: m.kind != "presence", wait)

    async def next_presence(self, wait: float = 10.0) -> Message:
        """The next presence notice, skipping everything else."""
        return await self._next_where(lambda m: m.kind == "presence", wait)

    async def _next_where(self, wanted: Callable[[Message], bool], wait: float) -> Message:
        """The next message `wanted`, within `wait` seconds however many others come."""
        deadline = time.monotonic() + wait
        while True:
            message = await asyncio.wait_for(self._read(), max(0.0, deadline - time.monotonic()))
            if wanted(message):
                return message

    async def next_event(self, wait: float = 10.0) -> Message:
        """The next real event, skipping heartbeats and retry lines."""
        while True:
            message = await self.next(wait)
            if message.kind == "event":
                return message

    async def events_until_quiet(self, wait: float = 10.0) -> list[Message]:
        """Every event until the first heartbeat comment: "nothing more for now"."""
        got = []
        while True:
            message = await self.next(wait)
            if message.kind == "comment":
                return got
            if message.kind == "event":
                got.append(message)

    async def _read_all(self) -> None:
        fields: dict[str, list[str]] = {}
        try:
            async for line in self._lines():
                if line == "":
                    if fields:
                        self._messages.put_nowait(_message(fields))
                        fields = {}
                    continue
                if line.startswith(":"):
                    if not fields:
                        # A comment on its own: report it (after its blank line).
                        fields["_comment"] = [line[1:].strip()]
                    continue
                name, _, value = line.partition(":")
                fields.setdefault(name, []).append(value[1:] if value.startswith(" ") else value)
            self._messages.put_nowait(EOFError("the stream ended"))
        except httpx.HTTPError as error:
            self._messages.put_nowait(error)

    def _lines(self) -> AsyncIterator[str]:
        return self._inflated_lines() if self.inflate else self.response.aiter_lines()

    async def _inflated_lines(self) -> AsyncIterator[str]:
        assert self.response.headers.get("Content-Encoding") == "gzip", self.response.headers
        inflater = zlib.decompressobj(31)  # gzip: header, then deflate blocks
        text = codecs.getincrementaldecoder("utf-8")()
        pending = ""
        async for chunk in self.response.aiter_raw():
            self.raw.append(chunk)
            pending += text.decode(inflater.decompress(chunk))
            *lines, pending = pending.split("\n")
            for line in lines:
                yield line


def _message(fields: dict[str, list[str]]) -> Message:
    if "_comment" in fields:
        return Message("comment", data=fields["_comment"][0])
    if "retry" in fields and "data" not in fields:
        return Message("retry", retry=int(fields["retry"][0]))
    event = fields.get("event", ["message"])[0]
    return Message(
        "presence" if event == "presence" else "event",
        id=int(fields["id"][0]) if "id" in fields else None,
        event=event,
        data="\n".join(fields.get("data", [])),
    )


@contextlib.asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str] | None = None,
    *,
    inflate: bool = False,
) -> AsyncIterator[Stream]:
    async with client.stream("GET", url, headers=headers or {}) as response:
        stream = Stream(response, inflate=inflate)
        try:
            yield stream
        finally:
            await stream.close()


def people(notice_html: str) -> dict[int, int | None]:
    """user id → task id, from a presence notice or a page's #presence."""
    row = notice_html[notice_html.index('id="presence"') :]
    row = row[: row.index("</ul>")]
    found = {}
    for attrs in re.findall(r'<li (class="presence-person[^>]*)>', row):
        user = re.search(r'data-presence-user-id="(\d+)"', attrs)
        task = re.search(r'data-viewing-task="(\d+)"', attrs)
        assert user is not None
        found[int(user.group(1))] = int(task.group(1)) if task else None
    return found


async def presence_until(stream: Stream, want: dict[int, int | None], within: float) -> float:
    """Read presence notices until one shows exactly `want`; how long it took."""
    started = time.monotonic()
    deadline = started + within
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"presence never became {want}")
        message = await stream.next_presence(wait=left)
        if people(message.data) == want:
            return time.monotonic() - started
