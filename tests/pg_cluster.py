"""A PostgreSQL server of a test's own, on a port of its own, that the test may stop and
start again (the shared one at 5432 serves every other test and must stay up).

Debian's server binaries, run as the `postgres` user (PostgreSQL refuses to run as
root), on a data folder made for the test and removed afterwards; fsync is off, as
nothing here needs to survive a power cut.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.server import free_port

VERSIONS = Path("/usr/lib/postgresql")


def _bin(name: str) -> Path | None:
    found = sorted(VERSIONS.glob(f"*/bin/{name}")) if VERSIONS.is_dir() else []
    return found[-1] if found else None


@dataclass
class Cluster:
    data: Path
    port: int
    log: Path

    def _ctl(self, *args: str) -> None:
        pg_ctl = _bin("pg_ctl")
        assert pg_ctl is not None
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(pg_ctl), "-D", str(self.data), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._ctl("-o", options, "-l", str(self.log), "-w", "start")

    def stop(self) -> None:
        """Stop it the way an operator's restart does: connections are ended at once."""
        self._ctl("-m", "fast", "-w", "stop")

    def url(self, name: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{name}"

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"


@contextlib.contextmanager
def private_postgres() -> Iterator[Cluster]:
    """A fresh PostgreSQL server, started; stopped and removed afterwards."""
    initdb = _bin("initdb")
    if initdb is None or shutil.which("runuser") is None:
        pytest.skip("needs Debian's PostgreSQL server binaries (/usr/lib/postgresql) and runuser")
    if os.geteuid() != 0:
        pytest.skip("runs PostgreSQL as the postgres user, which takes root")
    folder = Path(tempfile.mkdtemp(prefix="sprintboard-pg-"))
    shutil.chown(folder, "postgres")
    cluster = Cluster(folder / "data", free_port(), folder / "server.log")
    as_postgres = ["runuser", "-u", "postgres", "--", str(initdb)]
    subprocess.run(
        [*as_postgres, "-D", str(cluster.data), "-A", "trust", "-U", "postgres", "--no-sync"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=120,
    )
    try:
        cluster.start()
        yield cluster
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
