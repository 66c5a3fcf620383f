"""Live board streams: server-sent events and their WebSocket twin, HTML fragments."""

from __future__ import annotations

from quart import Blueprint

bp = Blueprint("live", __name__)

from app.live import routes  # noqa: E402,F401
