"""GET /o/<org>/events (SSE) and /o/<org>/ws (the same HTML messages over a WebSocket)."""

from __future__ import annotations

from typing import Any

from quart import Response, g, request, websocket

from app.auth.csrf import same_origin_websocket
from app.auth.guards import org_member_required, resolve_membership, use_membership
from app.errors import Refusal
from app.events import sse
from app.live import bp
from app.live.streams import (
    Viewer,
    check_stream_limit,
    live_updates,
    messages,
    parse_cursor,
    parse_sprint,
    sse_frame,
    sse_heartbeat,
    sse_reset,
)


@bp.get("/o/<org>/events")
@org_member_required
async def events(org: str) -> Any:
    """Stream the organization's events as HTML fragments; resume from a cursor."""
    cursor = parse_cursor(request.headers.get("Last-Event-ID"), request.args.get("after"))
    sprint_id = await parse_sprint(g.org.id, request.args.get("sprint"))
    check_stream_limit(g.user.id)
    live, org_id, viewer = live_updates(), g.org.id, Viewer.current()

    body = messages(
        live,
        org_id,
        viewer,
        sprint_id,
        cursor,
        frame=sse_frame,
        reset=sse_reset,
        heartbeat=sse_heartbeat,
        opening=sse.retry(),
        # The server is going away (or this stream fell behind): come back soon.
        closing=sse.retry(500),
        join=b"".join,
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
    if not same_origin_websocket():
        return "This connection came from another site and was refused.", 403
    if g.get("user") is None:
        return "Sign in first.", 401
    try:
        use_membership(await resolve_membership(org))
        cursor = parse_cursor(None, websocket.args.get("after"))
        sprint_id = await parse_sprint(g.org.id, websocket.args.get("sprint"))
        check_stream_limit(g.user.id)
    except Refusal as refusal:
        return refusal.message, refusal.status
    await websocket.accept()
    async for text in messages(
        live_updates(),
        g.org.id,
        Viewer.current(),
        sprint_id,
        cursor,
        frame=lambda f: f.html,
        reset=_ws_reset,
    ):
        await websocket.send(text)
    await websocket.close(1012)  # service restart: the client should reconnect


def _ws_reset(newest: int) -> str:
    return f'<template data-live-reset data-event-id="{newest}"></template>'
