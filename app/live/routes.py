"""GET /o/<org>/events (SSE) and /o/<org>/ws (the same HTML messages over a WebSocket)."""

from __future__ import annotations

from typing import Any

from quart import Response, request, websocket

from app.live import bp, sse
from app.live.streams import (
    live_updates,
    messages,
    open_stream,
    open_websocket,
    sse_bytes,
    sse_closing,
    sse_heartbeat,
    sse_reset,
)


@bp.get("/o/<org>/events")
async def events(org: str) -> Any:
    """Stream the organization's events as HTML fragments; resume from a cursor."""
    opening = await open_stream(org, request.args, request.headers.get("Last-Event-ID"))
    body = messages(
        live_updates(),
        opening,
        frame=sse_bytes,
        reset=sse_reset,
        notice=sse_bytes,
        heartbeat=sse_heartbeat,
        hello=sse.retry(),
        # The server is going away (or this stream fell behind): when to come back.
        closing=sse_closing,
        join=b"".join,
        present=True,
    )
    response = Response(
        body,
        200,
        {
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        },
    )
    response.timeout = None  # Quart's RESPONSE_TIMEOUT would cut the stream after 60 s
    return response


@bp.websocket("/o/<org>/ws")
async def events_ws(org: str) -> Any:
    """The same HTML messages over a WebSocket, for networks whose proxies break SSE."""
    opening = await open_websocket(org)
    if isinstance(opening, tuple):
        return opening  # refused before the handshake
    await websocket.accept()
    async for text in messages(
        live_updates(),
        opening,
        frame=lambda f: f.html,
        reset=_ws_reset,
        notice=lambda n: n.html,
        present=True,
    ):
        await websocket.send(text)
    await websocket.close(1012)  # service restart: the client should reconnect


def _ws_reset(newest: int) -> str:
    return f'<template data-live-reset data-event-id="{newest}"></template>'
