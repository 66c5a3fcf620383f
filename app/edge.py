"""The HTTP edge: what Hypercorn lets through that the app must not act on.

Hypercorn (with h11) parses the wire and hands every request to the app; a few of its
habits are unsafe behind a proxy or against a hostile client, and are refused or
mended here, in the outermost ASGI layer, before anything else sees the request:

- A request framed two ways (`Content-Length` and `Transfer-Encoding`) is refused
  with 400 and its connection closed (RFC 9112 §6.1): h11 reads it as chunked and
  keeps the connection, which is how requests are smuggled past a proxy that reads it
  the other way.
- HTTP/2 in cleartext (h2c, which Hypercorn switches to on `Upgrade: h2c` or the
  HTTP/2 preface, before the app is asked) is answered 400 on every stream, WebSocket
  handshakes (extended CONNECT) included: we serve
  HTTP/1.1 behind a proxy, and a tunnel past the proxy's rules is all h2c would give.
- An answer ready before the request's body has arrived (a 401 from a guard, a 404,
  a 405) waits for the rest of the body, up to the size limit and the body time
  limit, and while it keeps coming, so that the connection can carry the next
  request. Past any of these it says `Connection: close`. Without this Hypercorn
  closed the connection silently after the answer, and a proxy that was still
  writing the body got a reset (nginx then answered 502 to whoever's request came
  next on that connection).

What upstream would need for each is in docs/security.md.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]  # Quart's own, more exact, type also fits


class Edge:
    """ASGI middleware: the rules above, around `app`."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, body_seconds: float) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # The wait happens inside Quart's RESPONSE_TIMEOUT (60 s), which would cancel it.
        self.body_seconds = min(body_seconds, 50.0)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cleartext_h2 = scope.get("http_version") == "2" and scope.get("scheme") in ("http", "ws")
        if scope["type"] == "websocket" and cleartext_h2:
            # Hypercorn opens WebSockets over HTTP/2 too (extended CONNECT, RFC 8441).
            await refuse(send, H2C_REFUSED, close=False, prefix="websocket.http.")
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if cleartext_h2:
            await refuse(send, H2C_REFUSED, close=False)
            return
        framing = {
            name.lower(): value
            for name, value in scope["headers"]
            if name.lower() in (b"content-length", b"transfer-encoding")
        }
        if len(framing) == 2:
            await refuse(send, "Content-Length and Transfer-Encoding cannot both be sent.")
            return
        if not framing or framing.get(b"content-length") == b"0":
            # No body to wait for (every GET, every stream, a take): nothing to watch.
            await self.app(scope, receive, send)
            return
        body = BodySeen(self.max_body_bytes, self.body_seconds)
        await self.app(scope, body.watching(receive), body.draining_before(send))


H2C_REFUSED = "HTTP/2 is not spoken here without TLS."
# An early answer waits for the rest of a body only while it keeps coming: a client that
# sends a few bytes and stops gets its answer (and `Connection: close`) this soon.
IDLE_BODY_SECONDS = 2.0


class BodySeen:
    """How much of one request's body the app has received, so that an answer can wait
    for the rest of it."""

    def __init__(self, max_bytes: int, seconds: float) -> None:
        self.max_bytes = max_bytes
        self.seconds = seconds
        self.received = 0
        self.complete = False
        self.progress = asyncio.Event()

    def watching(self, receive: Receive) -> Receive:
        async def watched() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                self.received += len(message.get("body", b""))
                self.complete = not message.get("more_body", False)
            elif message["type"] == "http.disconnect":
                self.complete = True
            self.progress.set()
            return message

        return watched

    def draining_before(self, send: Send) -> Send:
        async def sent(message: Message) -> None:
            starts = message["type"] == "http.response.start" and not self.complete
            if starts and not says_close(message) and not await self.rest_arrives():
                headers = [*message.get("headers", []), (b"connection", b"close")]
                message = {**message, "headers": headers}
            await send(message)

        return sent

    async def rest_arrives(self) -> bool:
        """Wait while the app's own reader takes in the rest of the body (Quart reads a
        request's body alongside its handler); False once it is too large, stops
        coming for IDLE_BODY_SECONDS, or takes longer than the body limit."""
        deadline = time.monotonic() + self.seconds
        while not self.complete:
            if self.received > self.max_bytes:
                return False
            self.progress.clear()
            wait = min(IDLE_BODY_SECONDS, deadline - time.monotonic())
            try:
                await asyncio.wait_for(self.progress.wait(), wait)
            except TimeoutError:
                return False
        return True


def says_close(message: Message) -> bool:
    return any(
        name.lower() == b"connection" and b"close" in value.lower()
        for name, value in message.get("headers", [])
    )


async def refuse(send: Send, sentence: str, *, close: bool = True, prefix: str = "http.") -> None:
    """400 in the API's error shape; the connection closed after it when `close`.
    (`prefix` "websocket.http." answers a WebSocket handshake the same way.)"""
    body = json.dumps({"error": {"code": "bad_request", "message": sentence}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": prefix + "response.start", "status": 400, "headers": headers})
    await send({"type": prefix + "response.body", "body": body})
