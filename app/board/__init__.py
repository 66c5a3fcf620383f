"""The sprint board: the page, the task actions, and the sprints list."""

from __future__ import annotations

from quart import Blueprint

bp = Blueprint("board", __name__)

from app.board import routes  # noqa: E402,F401
