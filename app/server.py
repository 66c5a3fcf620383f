"""Run the app under Hypercorn with the uvloop worker, and shut down gracefully.

On SIGTERM or SIGINT every live stream is told when to come back (`retry:`, spread
between 0.5 and 5 s so that thousands of browsers do not return in the same
millisecond) and closed first, so Hypercorn's graceful shutdown is not held up by
connections that never end; WebSockets close with 1012 (service restart). Clients
resume from their cursors when the server is back. With several workers this process
holds the listening sockets and supervises one process per worker, each shutting down
the same way; every process is gone within SHUTDOWN_SECONDS.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import math
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import time
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.config import Config, Sockets
from quart import Quart

from app.config import Settings
from app.live.inbound import HYPERCORN_MAX_MESSAGE_BYTES
from app.live.streams import EXTENSION as LIVE
from app.live.streams import live_updates

log = logging.getLogger(__name__)

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"  # see app/metrics.py
GRACE_SECONDS = 5.0  # for requests still running once the streams are closed
# A worker still there after this is killed. The promise is every process gone within
# 10 s of SIGTERM; killing, reaping and exiting take up to a second on a loaded
# machine, so the deadline keeps two in hand (and the 5 s grace for requests).
SHUTDOWN_SECONDS = 8.0
MIN_UPTIME_SECONDS = 10.0  # a worker that dies sooner could not start: give up


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
    # What a WebSocket message may grow to before Hypercorn gives up on it (its default,
    # 16 MiB, was held per message). The app closes past MAX_MESSAGE_BYTES itself, and
    # then waits for the client's close; Hypercorn's own close (this far bigger) never
    # tells the app, which would keep the stream until the client left.
    config.websocket_max_message_size = HYPERCORN_MAX_MESSAGE_BYTES
    config.errorlog = "-"
    return config


async def close_streams(app: Quart) -> None:
    """Tell every stream when to come back, and end it (nothing, if the app never
    started)."""
    if LIVE in app.extensions:
        await live_updates(app).end_all_streams()


def one_line_for_dropped_connections(
    loop: asyncio.AbstractEventLoop, context: dict[str, Any]
) -> None:
    """The event loop's handler for errors nobody caught: a connection the kernel gave
    up on (a stalled client, past TCP_USER_TIMEOUT) or the peer reset is one log line.
    Hypercorn lets such an error escape while it closes the connection, and the loop's
    default handler printed a traceback for each. Anything else still gets one."""
    error = context.get("exception")
    if isinstance(error, OSError) and error.errno in DROPPED:
        log.info("connection dropped: %s", error)
        return
    loop.default_exception_handler(context)  # ours (an asyncio time-out, say): in full


# What the kernel says of a connection that went away: timed out (TCP_USER_TIMEOUT, or
# keepalive probes unanswered), reset, or its other end closed.
DROPPED = frozenset({errno.ETIMEDOUT, errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED})


def serve_in_process(app: Quart, config: Config, sockets: Sockets | None = None) -> None:
    """One worker, in this process, on uvloop, through Hypercorn's documented `serve`: on
    `sockets` a supervisor opened (handed over by descriptor, Hypercorn's `fd://` bind),
    or on its own."""
    import uvloop

    if sockets is not None:
        # This process owns the descriptors from now on: Hypercorn closes them.
        config.bind = [f"fd://{sock.detach()}" for sock in sockets.insecure_sockets]
    config.workers = 1  # this process is one worker, however many the supervisor runs

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(one_line_for_dropped_connections)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

        async def shutdown_trigger() -> None:
            await stop.wait()
            await close_streams(app)

        await serve(app, config, shutdown_trigger=shutdown_trigger)  # type: ignore[arg-type]

    uvloop.run(main())


def serve_workers(config: Config, workers: int) -> int:
    """Several workers on one port. This process opens the listening sockets and starts
    one process per worker on them (each runs `serve_in_process`). SIGTERM or SIGINT here
    is passed on to every worker. A worker that dies on its own after running a while is
    replaced; one that dies within MIN_UPTIME_SECONDS of starting (it cannot start: the
    database is away, the configuration is wrong) stops them all, with exit status 1, so
    that the process manager sees the failure instead of a loop of restarts.

    Our own supervisor rather than Hypercorn's: its workers wait for a shared event and
    then for the grace period, with no way to close the streams first, so every stream
    was cut at the deadline instead of being told when to come back.
    """
    context = multiprocessing.get_context("spawn")
    sockets = config.create_sockets()
    stopping = False
    # Every worker writes its metrics to files here; the one asked for /metrics adds
    # them up. Set before any worker starts (and before it imports prometheus-client).
    own_metrics = MULTIPROC_DIR not in os.environ
    if own_metrics:
        os.environ[MULTIPROC_DIR] = tempfile.mkdtemp(prefix="sprintboard-metrics-")

    started: dict[int, float] = {}  # sentinel → when its worker started

    def start() -> BaseProcess:
        process = context.Process(target=_worker, args=(config, sockets), name="sprintboard-worker")
        process.start()
        started[process.sentinel] = time.monotonic()
        return process

    # The signal handler writes here: waiting on it too, the loop wakes at once, and the
    # shutdown deadline runs from the signal, not from the first worker to exit.
    woken, wake = os.pipe()
    deadline = math.inf

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping, deadline
        if not stopping:
            stopping, deadline = True, time.monotonic() + SHUTDOWN_SECONDS
        for process in processes:
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        os.write(wake, b".")

    processes: list[BaseProcess] = []
    for sig in (signal.SIGINT, signal.SIGTERM):  # before any worker exists to be orphaned
        signal.signal(sig, stop)
    for _ in range(workers):
        processes.append(start())
        if stopping:  # signalled while starting: this one was not told yet
            stop(signal.SIGTERM, None)
    status = 0
    while not stopping:
        ended = wait([p.sentinel for p in processes] + [woken])
        for index, process in enumerate(processes):
            if process.sentinel not in ended or stopping:
                continue
            process.join()
            _forget_metrics_of(process)
            if time.monotonic() - started.pop(process.sentinel) < MIN_UPTIME_SECONDS:
                log.error("worker %s could not start (%s); stopping", process.pid, process.exitcode)
                status = 1
                stop(signal.SIGTERM, None)
                break
            log.warning("worker %s exited (%s); starting another", process.pid, process.exitcode)
            processes[index] = start()
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            log.warning("worker %s did not stop in time; killing it", process.pid)
            process.kill()
            process.join()
    for process in processes:
        _forget_metrics_of(process)
    for sock in sockets.secure_sockets + sockets.insecure_sockets:
        sock.close()
    if own_metrics:
        shutil.rmtree(os.environ.pop(MULTIPROC_DIR), ignore_errors=True)
    os.close(woken)
    os.close(wake)
    return status


def _forget_metrics_of(process: BaseProcess) -> None:
    """A dead worker's gauges (streams open) must not count any more."""
    from prometheus_client import multiprocess

    if process.pid is not None:
        multiprocess.mark_process_dead(process.pid)


def _worker(config: Config, sockets: Sockets) -> None:
    """One worker process: the app, on the supervisor's sockets."""
    from app import create_app

    # Ctrl-C reaches the whole process group; the supervisor passes SIGTERM on anyway.
    serve_in_process(create_app(), config, sockets)
