"""Sign-in, sessions, CSRF and the guards every route uses."""

from __future__ import annotations

from quart import Blueprint

bp = Blueprint("auth", __name__)

from app.auth import routes  # noqa: E402,F401  (registers the routes on bp)
