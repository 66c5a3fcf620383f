"""GET /o/<org>/events (SSE) and /o/<org>/ws (the same HTML messages over a WebSocket)."""

from __future__ import annotations

from typing import Any

from quart import Response, request, websocket

from app.events.compress import wants_gzip
from app.live import bp
from app.live.inbound import send_all
from app.live.streams import (
    GZIP,
    PLAIN,
    WebSocketHtml,
    live_updates,
    messages,
    open_stream,
    open_websocket,
    sse_messages,
)


@bp.get("/o/<org>/events")
async def events(org: str) -> Any:
    """Stream the organization's events as HTML fragments; resume from a cursor.
    gzip-compressed when the client accepts it (browsers do) unless `?nocompress=1`."""
    opening = await open_stream(org, request.args, request.headers.get("Last-Event-ID"))
    encoding = GZIP if wants_gzip(request.accept_encodings, request.args) else PLAIN
    headers = {
        "Content-Type": "text/event-stream; charset=utf-8",
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
        "Vary": "Accept-Encoding",
    }
    if encoding.content_encoding:
        headers["Content-Encoding"] = encoding.content_encoding
    if request.method == "HEAD":
        # Checked as a GET is, but not subscribed: Quart would run the body that a HEAD
        # never sends, and hold a stream (and a place under the limit) open for it.
        head = Response(b"", 200, headers)
        del head.headers["Content-Length"]  # a GET's length is not 0: it has none
        return head
    response = Response(sse_messages(live_updates(), opening, encoding), 200, headers)
    response.timeout = None  # Quart's RESPONSE_TIMEOUT would cut the stream after 60 s
    return response


@bp.websocket("/o/<org>/ws")
async def events_ws(org: str) -> Any:
    """The same HTML messages over a WebSocket, for networks whose proxies break SSE."""
    opening = await open_websocket(org)
    if isinstance(opening, tuple):
        return opening  # refused before the handshake
    await websocket.accept()
    # Ends with 1012 (service restart: the client should reconnect) when the server stops.
    await send_all(messages(live_updates(), opening, WebSocketHtml(), present=True))
