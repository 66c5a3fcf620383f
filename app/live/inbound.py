"""What a WebSocket client sends us: read and dropped, within limits.

Our WebSockets only send. But Quart queues every message a client sends until the
handler reads it, with no limit, so a handler that never reads lets any signed-in
client (a viewer too) fill the server's memory. `send_all` therefore reads alongside
sending and drops what it reads; past the limits it closes the socket with the code
that says why, and waits a moment for the client's own close. A message too big for
even that (past HYPERCORN_MAX_MESSAGE_BYTES) Hypercorn refuses before it is whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterable

from quart import websocket

MAX_MESSAGE_BYTES = 64 * 1024
# Past this Hypercorn closes with 1009 before the message is whole (app/server.py).
HYPERCORN_MAX_MESSAGE_BYTES = 1024 * 1024
MAX_MESSAGES = 100
PER_SECONDS = 60.0

MESSAGE_TOO_BIG = 1009
POLICY_VIOLATION = 1008
SERVICE_RESTART = 1012
CLOSING_SECONDS = 5.0  # for a client to answer our close frame with its own


async def send_all(texts: AsyncIterable[str]) -> None:
    """Send each of `texts`, reading and dropping what the client sends meanwhile, then
    close: 1012 (service restart) when `texts` ends, 1009 or 1008 when the client broke
    a limit. A client that goes away cancels this (and both halves with it)."""
    sending = asyncio.ensure_future(_send(texts))
    reading = asyncio.ensure_future(_read_and_drop())
    try:
        done, _ = await asyncio.wait({sending, reading}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for half in (sending, reading):
            half.cancel()
        # Their ends (cancellations included) are results here; our own cancellation,
        # if that is why we are here, still reaches whoever awaits us.
        await asyncio.gather(sending, reading, return_exceptions=True)
    code = done.pop().result()
    await websocket.close(code)
    if code != SERVICE_RESTART:
        # The client is still sending: read on (and drop) until its own close frame
        # arrives and Quart ends us. Were the socket closed now, what it still sends
        # would meet a reset, and the reset can destroy our close frame before the
        # client reads it (it would see 1006, not why).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSING_SECONDS):
                while True:
                    await websocket.receive()


async def _send(texts: AsyncIterable[str]) -> int:
    async for text in texts:
        await websocket.send(text)
    return SERVICE_RESTART  # the stream ended because the server is stopping


async def _read_and_drop() -> int:
    """Read until the client breaks a limit; return the close code that says which."""
    arrived: deque[float] = deque()
    while True:
        message = await websocket.receive()
        size = len(message.encode()) if isinstance(message, str) else len(message)
        if size > MAX_MESSAGE_BYTES:
            return MESSAGE_TOO_BIG
        now = time.monotonic()
        arrived.append(now)
        while arrived[0] <= now - PER_SECONDS:
            arrived.popleft()
        if len(arrived) > MAX_MESSAGES:
            return POLICY_VIOLATION
