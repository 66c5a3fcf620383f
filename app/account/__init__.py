"""My account: personal API tokens and signing out everywhere."""

from __future__ import annotations

from quart import Blueprint

bp = Blueprint("account", __name__)

from app.account import routes  # noqa: E402,F401
