"""Sprintboard: a live sprint task board. `create_app()` builds the Quart app."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from quart import Quart, Response, g, has_websocket_context, jsonify, render_template, request
from quart_schema import (
    HttpSecurityScheme,
    Info,
    QuartSchema,
    RequestSchemaValidationError,
)
from sqlalchemy import text
from werkzeug.exceptions import HTTPException
from werkzeug.routing import WebsocketMismatch

from app.api.openapi import ApiOpenAPI
from app.config import Settings
from app.db import Database
from app.edge import Edge
from app.errors import PreconditionFailed, Refusal
from app.inputs import Request, RowIdConverter
from app.outages import RETRY_AFTER_SECONDS, Cause, cause_of, log_failure
from app.outages import note as note_outage

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024


def create_app(config: Mapping[str, Any] | None = None) -> Quart:
    """Build the app from the environment, with `config` overriding settings (tests)."""
    settings = Settings.from_env().merged(config).checked()
    app = Quart(__name__)
    app.request_class = Request
    app.url_map.converters["int"] = RowIdConverter
    app.config["SETTINGS"] = settings
    app.secret_key = settings.secret_key
    secure = settings.secure_cookies
    app.config.update(
        SESSION_COOKIE_NAME="__Host-sprintboard" if secure else "sprintboard_session",
        SESSION_COOKIE_SECURE=secure,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=dt.timedelta(days=14),
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        # A body that has not arrived in time is answered 408 (and its connection closed).
        BODY_TIMEOUT=settings.body_seconds,
        TEMPLATES_AUTO_RELOAD=settings.is_development,
    )

    QuartSchema(
        app,
        openapi_path="/openapi.json",
        redoc_ui_path=None,
        scalar_ui_path=None,
        swagger_ui_path=None,
        info=Info(title="Sprintboard API", version="1"),
        security_schemes={"bearer": HttpSecurityScheme(scheme="bearer", bearer_format="token")},
        security=[{"bearer": []}],
        openapi_provider_class=ApiOpenAPI,
    )

    if settings.oidc_configured:
        from app.auth.oidc import OIDCClient

        app.extensions["oidc"] = OIDCClient(settings)

    from app.web import install_template_helpers

    install_template_helpers(app)
    from app import operations

    operations.install(app, settings)  # first: its clock starts before the other hooks
    app.asgi_app = Edge(  # type: ignore[method-assign, assignment]
        app.asgi_app, max_body_bytes=MAX_BODY_BYTES, body_seconds=settings.body_seconds
    )  # outermost: it sees the request as the server parsed it
    _register_blueprints(app)
    _register_request_hooks(app)
    _register_error_handlers(app)
    _register_lifecycle(app, settings)
    return app


def _register_blueprints(app: Quart) -> None:
    from app.account import bp as account_bp
    from app.api import bp as api_bp
    from app.auth import bp as auth_bp
    from app.backlog import bp as backlog_bp
    from app.board import bp as board_bp
    from app.live import bp as live_bp
    from app.live.streams import live_updates
    from app.members import bp as members_bp
    from app.sprints import bp as sprints_bp
    from app.stories import bp as stories_bp
    from app.tidy import bp as tidy_bp

    for bp in (
        auth_bp,
        board_bp,
        sprints_bp,
        backlog_bp,
        stories_bp,
        tidy_bp,
        members_bp,
        account_bp,
        live_bp,
        api_bp,
    ):
        app.register_blueprint(bp)
    _drop_flask_context_processors(app)

    @app.get("/healthz")
    async def healthz() -> Any:
        """Say whether the database and the broker answer."""
        db: Database = app.extensions["db"]
        database = "ok"
        try:
            async with db.read() as session:
                await session.execute(text("SELECT 1"))
        except Exception as error:  # any failure means "not ok"; the reason goes to the log
            # (once a minute when the database is away, not at every load balancer check)
            log_failure(log, "health check: database", error)
            database = "down"
        broker = live_updates(app).broker
        # "memory" in one process; "ok" or "down" for Redis.
        broker_state = "memory" if broker.kind == "memory" else ("ok" if broker.healthy else "down")
        healthy = database == "ok" and broker_state != "down"
        body = {
            "status": "ok" if healthy else "degraded",
            "database": database,
            "broker": broker_state,
        }
        return jsonify(body), 200 if healthy else 503


def _drop_flask_context_processors(app: Quart) -> None:
    """Each blueprint comes with Flask's default template context processor. Under
    Quart it finds no Flask context and adds nothing, but it is a plain function, so
    Quart runs it on a thread for every template rendered in that blueprint. Quart's
    own (async, app-wide) one already gives templates `g`, `request` and `session`."""
    for processors in app.template_context_processors.values():
        processors[:] = [p for p in processors if p.__module__ != "flask.templating"]


def _register_request_hooks(app: Quart) -> None:
    from app.auth.csrf import protect
    from app.auth.guards import load_identity

    app.before_request(load_identity)
    app.before_request(protect)
    app.before_websocket(load_identity)

    @app.after_request
    async def security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if response.mimetype == "text/html":
            response.headers.setdefault("Cache-Control", "no-store")
        if response.status_code in (408, 413):
            # The body was not read to its end, so nothing after it on this connection
            # can be trusted to start where a request starts: close it.
            response.headers["Connection"] = "close"
        return response


def _wants_json() -> bool:
    from app.auth.guards import connection, is_stream_path

    path = connection().path
    return path.startswith("/api/") or path == "/openapi.json" or is_stream_path(path)


def _register_error_handlers(app: Quart) -> None:
    from app.auth.guards import connection, login_redirect
    from app.errors import Unauthenticated
    from app.web import is_htmx

    async def answer(status: int, code: str, message: str, **more: Any) -> Any:
        """The refusal in the asker's terms: a plain answer to a WebSocket handshake
        (there is no page to show), the API's error shape (with `more` beside the
        error), or the error page."""
        if has_websocket_context():
            return Response(message, status, {"Content-Type": "text/plain; charset=utf-8"})
        if _wants_json():
            return jsonify({"error": {"code": code, "message": message}, **more}), status
        if request.headers.get("HX-Request") == "true":
            # A page's script asked (a button, a key, a drag): the sentence goes where
            # that page shows its sentences; a whole error page would show nowhere.
            html = await render_template("_flash_oob.html", kind="error", message=message)
            return html, status
        return await render_template("errors/error.html", status=status, message=message), status

    @app.errorhandler(Refusal)
    async def refusal(error: Refusal) -> Any:
        if isinstance(error, Unauthenticated) and not has_websocket_context() and not _wants_json():
            return await login_redirect()
        more = {"current": error.current} if isinstance(error, PreconditionFailed) else {}
        return await answer(error.status, error.code, error.message, **more)

    @app.errorhandler(RequestSchemaValidationError)
    async def invalid_body(error: RequestSchemaValidationError) -> Any:
        detail = error.validation_error
        message = "The request body is not valid JSON for this route."
        errors = getattr(detail, "errors", None)
        if callable(errors):
            first = errors()[0] if errors() else None
            if first:
                where = ".".join(str(p) for p in first.get("loc", ())) or "body"
                message = f"{where}: {first.get('msg', 'invalid')}"
        return await answer(422, "invalid", message)

    @app.errorhandler(UnicodeDecodeError)
    async def undecodable(error: UnicodeDecodeError) -> Any:
        # Quart decodes a JSON body before parsing it; bytes that are not UTF-8 are the
        # client's mistake (400), not ours.
        if _wants_json():
            return await answer(400, "bad_request", "The request body is not UTF-8 text.")
        return await answer(400, "bad_request", "The request could not be understood.")

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Any:
        status = error.code or 500
        # Our own sentence when we gave one; else ours for werkzeug's stock wording.
        stock = {
            404: "There is nothing here.",
            405: "That method is not allowed here.",
            400: "The request could not be understood.",
            408: "The request took too long to arrive.",
            413: "The request is too large.",
        }
        if isinstance(error, WebsocketMismatch):  # a handshake where none goes, or none
            stock[400] = (  # where one must
                "This address does not speak WebSocket."
                if has_websocket_context()
                else "This address speaks only WebSocket."
            )
        custom = error.description and error.description != type(error).description
        message = error.description if custom else stock.get(status, error.description)
        message = message or "Something went wrong."
        return await answer(status, (error.name or "error").lower().replace(" ", "_"), message)

    async def unavailable(cause: Cause) -> Any:
        """503, Retry-After and the cause's sentence: in the API's shape, as a line on
        the page an htmx request came from (its flash region), or as the error page."""
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        g.outage = cause  # the page that says so reads nothing more from the database
        if has_websocket_context() or _wants_json() or not is_htmx():
            answer_ = await answer(503, "unavailable", cause.sentence)
            response = await app.make_response(answer_)
        else:
            page = await render_template("errors/_unavailable.html", cause=cause)
            response = await app.make_response((page, 503))
        response.headers.update(headers)
        return response

    @app.errorhandler(Exception)
    async def unexpected(error: Exception) -> Any:
        cause = cause_of(error)
        if cause is not None:  # not ours: the database is away, or its disk full
            note_outage(cause, error)
            return await unavailable(cause)
        method = "WEBSOCKET" if has_websocket_context() else request.method
        log.exception("unhandled error on %s %s", method, connection().path)
        if _wants_json() or has_websocket_context():
            return await answer(500, "internal", "Something went wrong on our side.")
        return await answer(500, "internal", "Something went wrong on our side. Please try again.")


def _register_lifecycle(app: Quart, settings: Settings) -> None:
    from app.auth.identities import current_identities
    from app.auth.identities import install as install_identities
    from app.events.broker import MemoryBroker
    from app.events.redis_broker import RedisBroker
    from app.live.fanout import Broker, LiveUpdates
    from app.live.render import Renderer
    from app.live.streams import EXTENSION as LIVE
    from app.live.streams import live_updates
    from app.logs import configure as configure_logging
    from app.operations import tune_garbage_collector

    @app.before_serving
    async def start() -> None:
        db = Database(settings.database_url)
        app.extensions["db"] = db
        broker: Broker = RedisBroker(settings.redis_url) if settings.redis_url else MemoryBroker()
        identities = install_identities(app, db)
        live = LiveUpdates(
            db,
            Renderer(app, db),
            broker,
            window=settings.replay_window,
            heartbeat=settings.heartbeat_seconds,
            identities=identities,
        )
        app.extensions[LIVE] = live
        if not settings.testing:  # a test process would keep every test's garbage
            tune_garbage_collector()
            configure_logging(fmt=settings.log_format)
        db.after_commit.append(live.committed)
        await identities.start()
        await live.start()

    @app.after_serving
    async def stop() -> None:
        await live_updates(app).stop()
        await current_identities(app).stop()
        await app.extensions["db"].close()
