"""Keeping the board tidy: moving a task to another story, archiving and restoring work,
an owner freeing a task someone else holds, the archive, and My work."""

from __future__ import annotations

from quart import Blueprint

bp = Blueprint("tidy", __name__)

from app.tidy import routes  # noqa: E402,F401
