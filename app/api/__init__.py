"""The JSON API under /api/v1, in the replaced system's shapes."""

from __future__ import annotations

from quart import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

from app.api import routes, stream  # noqa: E402,F401  (register the routes on bp)
