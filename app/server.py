"""Run the app under Hypercorn with the uvloop worker, and shut down gracefully.

On SIGTERM or SIGINT the live streams are told to come back soon (`retry:`) and closed
first, so Hypercorn's graceful shutdown is not held up by connections that never end;
clients resume from their cursors when the server is back.
"""

from __future__ import annotations

import asyncio
import gc
import signal

from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Config
from hypercorn.utils import wrap_app
from quart import Quart

GRACE_SECONDS = 5.0
GC_THRESHOLD = 50_000  # allocations between young collections (Python's default: 700)


def hypercorn_config(host: str, port: int, workers: int) -> Config:
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.application_path = "app:create_app()"
    config.worker_class = "uvloop"
    config.workers = workers
    # Thousands of browsers reconnect at once after a restart: don't drop their SYNs.
    config.backlog = 4096
    config.graceful_timeout = GRACE_SECONDS
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
