"""Start the servers a measurement needs: the project (SQLite or PostgreSQL, in-process
or Redis fan-out, one or more workers), the floor, and a Redis of the benchmark's own."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from bench import procs


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A throwaway redis-server on a free port; yields its URL."""
    port = procs.free_port()
    folder = tempfile.mkdtemp(prefix="bench-redis-")
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            folder,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:  # it says when it is ready
        if "Ready to accept connections" in line:
            break
    else:
        raise RuntimeError("redis-server did not start")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def project(
    workdir: Path,
    database_url: str,
    *,
    redis_url: str | None = None,
    workers: int = 1,
    port: int | None = None,
    under: Sequence[str] = (),
) -> Iterator[procs.Server]:
    """`sprintboard serve` in production mode against `database_url` (on `port`, to
    restart on the same one, or a free one), run by the command `under` if given (a
    profiler)."""
    port = port or procs.free_port()
    env = {
        "SPRINTBOARD_ENV": "production",
        "DATABASE_URL": database_url,
        "SECRET_KEY": "benchmark-secret-key-not-for-production",
        # Sign-in is not exercised (the benchmark uses API tokens); the provider is
        # never contacted, but production refuses to start without one.
        "OIDC_ISSUER": "http://127.0.0.1:9/",
        "OIDC_CLIENT_ID": "bench",
        "MAX_STREAMS_PER_USER": "1000000",
        "REDIS_URL": redis_url or "",
    }
    argv = [
        *under,
        *(procs.python(), "-m", "app", "serve", "--port", str(port), "--workers", str(workers)),
    ]
    server = procs.start("project", argv, port=port, env=env, workdir=workdir)
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def floor(workdir: Path) -> Iterator[procs.Server]:
    port = procs.free_port()
    argv = [procs.python(), "-m", "bench.floor", "--port", str(port)]
    server = procs.start("floor", argv, port=port, env={}, workdir=workdir)
    try:
        yield server
    finally:
        server.stop()
