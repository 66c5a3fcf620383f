"""Sprints: the organization's list of them, planning and moving them on."""

from __future__ import annotations

from quart import Blueprint

bp = Blueprint("sprints", __name__)

from app.sprints import closing, routes  # noqa: E402,F401
