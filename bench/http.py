"""A small HTTP/1.1 keep-alive client on raw asyncio streams.

The load generator shares the machine's two cores with the server, so it must cost
little per request: no parsing beyond the status line and Content-Length.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any


class ProtocolError(Exception):
    """The server answered something that is not an HTTP/1.1 response we can read."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes


def request_bytes(
    method: str, path: str, *, host: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Connection:
    """One keep-alive connection; `send` writes a request and reads its reply."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    async def send(self, raw: bytes) -> Reply:
        if self._writer is None or self._writer.is_closing():
            # New, or the server ended it (an idle keep-alive times out after 5 s).
            await self.open()
        assert self._reader is not None and self._writer is not None
        self._writer.write(raw)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise ProtocolError(status_line)
        length = 0
        chunked = closing = False
        for line in header_lines:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif name == "connection" and "close" in value.lower():
                closing = True
        body = await self._read_chunked() if chunked else await self._reader.readexactly(length)
        if closing:  # Hypercorn ends a keep-alive connection after 1,000 requests
            await self.close()
        return Reply(int(parts[1]), body)

    async def _read_chunked(self) -> bytes:
        assert self._reader is not None
        parts = []
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
            parts.append(await self._reader.readexactly(size + 2))
            if size == 0:
                return b"".join(parts)

    async def drop(self, raw: bytes) -> None:
        """Send a request and hang up at once, without waiting for the answer."""
        if self._writer is None:
            await self.open()
        assert self._writer is not None
        self._writer.write(raw)
        await self._writer.drain()
        self._writer.transport.abort()
        self._reader = self._writer = None

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        self._reader = self._writer = None


def ownership_change(number: int, *, task: int, host: str, headers: dict[str, str]) -> bytes:
    """The `number`th change of a task: take, release, take, … (one event each)."""
    method = "PUT" if number % 2 == 0 else "DELETE"
    return request_bytes(method, f"/api/v1/tasks/{task}/ownership", host=host, headers=headers)


async def task_history(port: int, task: int, headers: dict[str, str]) -> list[dict[str, Any]]:
    """A task's events through the API (`GET /api/v1/tasks/<id>/history`), newest first."""
    host = f"127.0.0.1:{port}"
    path = f"/api/v1/tasks/{task}/history"
    reply = await Connection("127.0.0.1", port).send(
        request_bytes("GET", path, host=host, headers=headers)
    )
    return json.loads(reply.body)["events"]  # type: ignore[no-any-return]
