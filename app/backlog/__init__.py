"""The backlog: the organization's stories in no sprint, and moving stories between it
and the sprints."""

from __future__ import annotations

from quart import Blueprint

bp = Blueprint("backlog", __name__)

from app.backlog import routes  # noqa: E402,F401
