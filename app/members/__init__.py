"""The members page: who belongs to an organization, invitations, roles, removal."""

from __future__ import annotations

from quart import Blueprint

bp = Blueprint("members", __name__)

from app.members import routes  # noqa: E402,F401
