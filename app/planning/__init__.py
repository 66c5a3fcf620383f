"""Stories and tasks: create, edit, and the task page with its history."""

from __future__ import annotations

from quart import Blueprint

bp = Blueprint("planning", __name__)

from app.planning import routes  # noqa: E402,F401
