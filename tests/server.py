"""A real Hypercorn process serving the app, for tests where the server's behaviour matters."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

READY_LINE = "Running on"
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    port: int
    process: subprocess.Popen[str]
    log: list[str] = field(default_factory=list)
    logged: threading.Condition = field(default_factory=threading.Condition)

    def wait_for_line(self, text: str, within: float) -> bool:
        """Whether a line containing `text` is in its log within `within` seconds
        (blocking: call it through `asyncio.to_thread` from a test's event loop)."""
        with self.logged:
            return self.logged.wait_for(lambda: any(text in line for line in self.log), within)

    def exit_status(self, within: float) -> int:
        """Its exit status once it has exited, waiting at most `within` seconds; if it
        is still running then, fail with what it logged (the supervisor says which
        worker it had to kill)."""
        try:
            return self.process.wait(timeout=within)
        except subprocess.TimeoutExpired:
            tail = "".join(self.log[-40:])
            raise AssertionError(f"still running after {within} s; its log ends:\n{tail}") from None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(
    database_url: str,
    *,
    port: int | None = None,
    workers: int = 1,
    host: str = "127.0.0.1",
    cwd: str | None = None,
    **env: str,
) -> Server:
    """Start `python -m app serve` and return once it says it is listening.

    `port` reuses a given port (a restart the browser should find again); else a free one.
    `host` is the address it listens on (and the URL's); `cwd` where it runs (its
    `instance/` folder).
    """
    port = port or free_port()
    environ = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SPRINTBOARD_ENV": "development",
        "SECRET_KEY": "server-test-secret",
        **env,
    }
    for name in ("OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET", "REDIS_URL"):
        if name not in env:
            environ.pop(name, None)
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "app", "serve", "--host", host, "--port", str(port)),
            *("--workers", str(workers)),
        ],
        env=environ,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    server = Server(f"http://{host}:{port}", port, process)
    ready = threading.Event()

    def drain() -> None:
        # Keep reading so the pipe never fills; note when the server is listening.
        assert process.stderr is not None
        for line in process.stderr:
            with server.logged:
                server.log.append(line)
                server.logged.notify_all()
            if READY_LINE in line:
                ready.set()
        ready.set()

    threading.Thread(target=drain, daemon=True).start()
    if not ready.wait(START_TIMEOUT) or process.poll() is not None:
        server.stop()
        raise RuntimeError("server did not start:\n" + "".join(server.log))
    return server


@contextlib.contextmanager
def running_server(
    database_url: str,
    *,
    port: int | None = None,
    workers: int = 1,
    cwd: str | None = None,
    **env: str,
) -> Iterator[Server]:
    server = start_server(database_url, port=port, workers=workers, cwd=cwd, **env)
    try:
        yield server
    finally:
        server.stop()
