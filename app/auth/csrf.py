"""Cross-site request forgery: a per-session token on every form, and origin checks.

A state-changing request made with the session cookie must carry the token (form
field `csrf_token` or header `X-CSRF-Token`) and must not come from another site
(`Origin`, `Sec-Fetch-Site`). Requests authenticated by a bearer token carry no
ambient credentials, so only the origin checks apply to them.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from quart import current_app, g, request, session, websocket

from app.errors import Forbidden

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
SIGN_IN_FORMS = {"/login/dev"}


def csrf_token() -> str:
    """The session's CSRF token, created on first use."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin(origin: str, *, scheme: str | None = None, host: str | None = None) -> bool:
    """Is `origin` this site (as configured, or as the request reached us)?"""
    scheme = scheme or request.scheme
    host = host or request.host
    allowed = {
        _origin_of(current_app.config["SETTINGS"].base_url),
        f"{scheme}://{host}".lower(),
    }
    return origin.lower() in allowed


def same_origin_websocket() -> bool:
    """A browser always sends Origin on a WebSocket; a foreign one is refused before
    the handshake completes. Clients that are not browsers send none."""
    origin = websocket.headers.get("Origin")
    if origin is None:
        return True
    scheme = "https" if websocket.scheme in ("wss", "https") else "http"
    return origin != "null" and same_origin(origin, scheme=scheme, host=websocket.host)


def check_cross_site() -> None:
    """Refuse requests that a browser says come from another site."""
    if request.headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
        raise Forbidden("This request came from another site and was refused.")
    origin = request.headers.get("Origin")
    if origin and origin != "null" and not same_origin(origin):
        raise Forbidden("This request came from another site and was refused.")
    if origin == "null":
        raise Forbidden("This request came from another site and was refused.")


async def protect() -> None:
    """Check every unsafe request (before each request)."""
    if request.method not in UNSAFE_METHODS:
        return
    check_cross_site()
    if g.get("via_token"):
        return
    if g.get("user") is None and request.path not in SIGN_IN_FORMS:
        # No credentials, nothing to forge: the route answers 401 or sends to sign-in.
        # (Sign-in forms keep their check: a forged sign-in is an attack of its own.)
        return
    sent = request.headers.get("X-CSRF-Token")
    # JSON bodies and PUT/PATCH/DELETE cannot be sent cross-site without a CORS
    # preflight, which we never grant; a plain-form POST could be, so not those.
    if (
        sent is None
        and request.path.startswith("/api/")
        and (request.method != "POST" or request.mimetype == "application/json")
    ):
        return
    if sent is None and request.mimetype in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        sent = (await request.form).get("csrf_token")
    expected = session.get("csrf")
    if not expected or not sent or not hmac.compare_digest(str(sent), str(expected)):
        raise Forbidden(
            "This form has expired or did not come from Sprintboard. Reload the page and try again."
        )
