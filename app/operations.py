"""What an operator needs from every request: a request id, one log line, metrics, and
the client's real address and scheme behind a trusted proxy. And `GET /metrics`, and
the process's garbage collector tuned for thousands of open streams."""

from __future__ import annotations

import gc
import hmac
import re
import time
import uuid
from typing import Any

from quart import Quart, Response, current_app, g, has_websocket_context, request, websocket
from quart.typing import ResponseTypes

from app import metrics
from app.config import Settings
from app.logs import log_request
from app.proxies import TRUSTED, TrustedProxies, parse_networks

GC_THRESHOLD = 50_000  # allocations between young collections (Python's default: 700)
REQUEST_ID_HEADER = "X-Request-Id"
# A proxy's request id is taken as it is only when it looks like one (no log injection).
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
# Label values come from fixed sets, never from the request as sent: any client could
# otherwise add a time series per made-up method (the route is already the matched
# rule's template, or one label for everything unmatched).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "WEBSOCKET"})
UNROUTED = "(no route)"


def install(app: Quart, settings: Settings) -> None:
    """Wire it all in; call before any other request hook (its clock starts first)."""
    app.asgi_app = TrustedProxies(  # type: ignore[method-assign, assignment]
        app.asgi_app, parse_networks(settings.forwarded_allow_ips)
    )
    app.before_request(_start)
    app.before_websocket(_start)
    app.after_request(_finish_request)
    app.after_websocket(_refused_websocket)
    app.teardown_websocket(_ended_websocket)
    app.add_url_rule("/metrics", "metrics", _metrics, methods=["GET"])


async def _start() -> None:
    g.started = time.perf_counter()
    asked = websocket if has_websocket_context() else request
    given = asked.headers.get(REQUEST_ID_HEADER, "")
    trusted = asked.scope.get(TRUSTED, False)
    g.request_id = given if trusted and _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def _record(asked: Any, status: int) -> str:
    """Count the request and write its log line; returns its request id."""
    request_id = g.get("request_id") or uuid.uuid4().hex
    route = asked.url_rule.rule if asked.url_rule is not None else UNROUTED
    method = "WEBSOCKET" if asked is websocket else asked.method
    seconds = time.perf_counter() - g.get("started", time.perf_counter())
    label = method if method in METHODS else "other"
    metrics.HTTP_REQUESTS.labels(route, label, str(status)).inc()
    metrics.HTTP_DURATION.labels(route, label, str(status)).observe(seconds)
    user, org = g.get("user"), g.get("org")
    # A task change through the API finds its organization inside the write (org_id).
    org_id = org.id if org is not None else g.get("org_id")
    log_request(
        method=method[:32],  # a token (no spaces or line breaks), but of any length
        route=route,
        status=status,
        duration_ms=round(seconds * 1000, 1),
        user_id=user.id if user is not None else None,
        org_id=org_id,
        request_id=request_id,
        client=asked.remote_addr,
    )
    return request_id


async def _finish_request(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = _record(request, response.status_code)
    return response


async def _refused_websocket(response: ResponseTypes | None) -> ResponseTypes | None:
    if response is not None:  # refused before the handshake
        _record(websocket, response.status_code)
        g.recorded = True
    return response


async def _ended_websocket(_error: BaseException | None) -> None:
    """An accepted socket's line, when it ends however it ends (a client that goes
    away cancels the handler, and no after-hook runs then)."""
    if not g.get("recorded"):
        _record(websocket, 101)


async def _metrics() -> Any:
    """Prometheus's text format. With METRICS_TOKEN, only for that bearer token; without,
    only for this machine, asked directly: a request that came through a proxy (it says
    whom it forwards) is from outside, whatever address the proxy connects from. Anyone
    else is told there is nothing here."""
    settings: Settings = current_app.config["SETTINGS"]
    if settings.metrics_token:
        given = request.headers.get("Authorization", "")
        allowed = hmac.compare_digest(given.encode(), f"Bearer {settings.metrics_token}".encode())
    else:
        forwarded = "X-Forwarded-For" in request.headers or "Forwarded" in request.headers
        allowed = not forwarded and metrics.is_loopback(request.remote_addr)
    if not allowed:
        return Response("Not found", 404, {"Content-Type": "text/plain"})
    body, content_type = metrics.exposition()
    return Response(body, 200, {"Content-Type": content_type})


def tune_garbage_collector() -> None:
    """Collect cycles less often, and never re-scan what start-up loaded.

    Every open stream holds a few hundred objects (its connection, request, queue and
    task); with the default thresholds a full collection walks all of them again and
    again while an event goes out to thousands of streams. Nothing the fan-out does
    relies on prompt cycle collection (streams end in `finally`, not in finalizers).
    """
    gc.collect()  # what start-up left behind, before the rest is set aside
    gc.freeze()  # modules, templates, the app: they live as long as the process
    gc.set_threshold(GC_THRESHOLD, 20, 20)
