"""Stories and tasks: create, edit, and the task page with its history."""

from __future__ import annotations

from quart import Blueprint

bp = Blueprint("stories", __name__)

from app.stories import routes  # noqa: E402,F401
