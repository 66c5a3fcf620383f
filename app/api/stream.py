"""GET /api/v1/ws/tasks: the JSON event stream for integrations (bots, CLIs, dashboards)."""

from __future__ import annotations

from typing import Any

from quart import websocket

from app.api import bp
from app.live.inbound import send_all
from app.live.streams import WebSocketJson, live_updates, messages, open_websocket


@bp.websocket("/ws/tasks")
async def task_events() -> Any:
    """Send every event of my organization as JSON; `?after=<id>` resumes, in order.
    Presence messages (`"type": "presence"`) say who is looking at which sprint."""
    ref = websocket.headers.get("X-Organization-Id") or websocket.args.get("org")
    opening = await open_websocket(ref)
    if isinstance(opening, tuple):
        return opening  # refused before the handshake
    await websocket.accept()
    # Ends with 1012 (service restart: reconnect with ?after=) when the server stops.
    await send_all(messages(live_updates(), opening, WebSocketJson(org_id=opening.org_id)))
