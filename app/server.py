"""Run the app under Hypercorn with the uvloop worker, and shut down gracefully.

On SIGTERM or SIGINT the live streams are told to come back soon (`retry:`) and closed
first, so Hypercorn's graceful shutdown is not held up by connections that never end;
clients resume from their cursors when the server is back.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import socket

from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Config, Sockets
from hypercorn.utils import wrap_app
from quart import Quart

from app.config import Settings

GRACE_SECONDS = 5.0
GC_THRESHOLD = 50_000  # allocations between young collections (Python's default: 700)


class ServerConfig(Config):
    """Hypercorn's settings, with listening sockets that give up on stalled or dead peers.

    TCP_USER_TIMEOUT bounds how long sent data may stay unacknowledged, or unsent
    because the peer's window is shut (a client that stopped reading): past it the
    kernel drops the connection, the stream ends and its slot is free again. Keepalive
    probes put data on quiet connections too (a WebSocket between events), so a peer
    that vanished without a word is found the same way. Accepted sockets inherit these
    options from the listening one.
    """

    stall_seconds: float = 30.0
    keepalive_idle_seconds: float = 15.0

    def create_sockets(self) -> Sockets:
        sockets = super().create_sockets()
        for sock in sockets.secure_sockets + sockets.insecure_sockets:
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                tune_for_stalls(sock, self.stall_seconds, self.keepalive_idle_seconds)
        return sockets


KEEPALIVE_INTERVAL_SECONDS = 5
KEEPALIVE_PROBES = 3


def tune_for_stalls(sock: socket.socket, stall_seconds: float, idle_seconds: float) -> None:
    """Have the kernel drop `sock`'s connections once their peer stops answering."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, int(stall_seconds * 1000))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, max(1, int(idle_seconds)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, KEEPALIVE_INTERVAL_SECONDS)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, KEEPALIVE_PROBES)


def hypercorn_config(host: str, port: int, workers: int, settings: Settings) -> ServerConfig:
    config = ServerConfig()
    config.bind = [f"{host}:{port}"]
    config.application_path = "app:create_app()"
    config.worker_class = "uvloop"
    config.workers = workers
    # Thousands of browsers reconnect at once after a restart: don't drop their SYNs.
    config.backlog = 4096
    config.graceful_timeout = GRACE_SECONDS
    # Hypercorn's idle timer runs from a connection's start (or its previous response)
    # until a request's headers are complete: it bounds slow headers, not only idling.
    config.keep_alive_timeout = settings.headers_seconds
    config.stall_seconds = settings.stall_seconds
    config.keepalive_idle_seconds = settings.heartbeat_seconds
    config.errorlog = "-"
    return config


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


def close_streams(app: Quart) -> None:
    live = app.extensions.get("live")
    if live is not None:
        live.hub.close_all("shutdown")


def serve_in_process(app: Quart, config: Config) -> None:
    """One worker, in this process, on uvloop."""
    import uvloop

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

        async def shutdown_trigger() -> None:
            await stop.wait()
            close_streams(app)

        wrapped = wrap_app(app, config.wsgi_max_body_size, mode=None)  # type: ignore[arg-type]
        await worker_serve(wrapped, config, shutdown_trigger=shutdown_trigger)

    uvloop.run(main())
