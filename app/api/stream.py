"""GET /api/v1/ws/tasks: the JSON event stream for integrations (bots, CLIs, dashboards)."""

from __future__ import annotations

import json
from typing import Any

from quart import g, websocket

from app.api import bp
from app.auth.accounts import memberships_of
from app.auth.csrf import same_origin_websocket
from app.auth.guards import get_db, resolve_membership, use_membership
from app.errors import NotFound, Refusal
from app.live.streams import (
    Viewer,
    check_stream_limit,
    live_updates,
    messages,
    parse_cursor,
    parse_sprint,
)


@bp.websocket("/ws/tasks")
async def task_events() -> Any:
    """Send every event of my organization as JSON; `?after=<id>` resumes, in order."""
    if not same_origin_websocket():
        return "This connection came from another site and was refused.", 403
    if g.get("user") is None:
        return "Send `Authorization: Bearer <token>`, `?token=`, or sign in.", 401
    try:
        ref = websocket.headers.get("X-Organization-Id") or websocket.args.get("org")
        if ref:
            use_membership(await resolve_membership(ref))
        else:
            async with get_db().read() as db:
                rows = await memberships_of(db, g.user.id)
            if not rows:
                raise NotFound("You are not a member of any organization.")
            use_membership(rows[0])
        cursor = parse_cursor(None, websocket.args.get("after"))
        sprint_id = await parse_sprint(g.org.id, websocket.args.get("sprint"))
        check_stream_limit(g.user.id)
    except Refusal as refusal:
        return refusal.message, refusal.status
    await websocket.accept()
    org_id = g.org.id
    async for text in messages(
        live_updates(),
        org_id,
        Viewer.current(),
        sprint_id,
        cursor,
        frame=lambda f: json.dumps(f.json),
        reset=lambda newest: json.dumps(
            {"id": newest, "organization_id": str(org_id), "type": "reset"}
        ),
    ):
        await websocket.send(text)
    await websocket.close(1012)  # service restart: reconnect with ?after=
