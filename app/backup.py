"""`sprintboard backup PATH`: a consistent copy of the SQLite database, taken while the
server runs and writes.

SQLite's online backup API (`sqlite3.Connection.backup`) copies the database as one
read transaction sees it: every change committed before the copy began, none after. In
WAL mode (ours) a reader does not block writers, so the server keeps writing while the
copy is made (its WAL just cannot be checkpointed past the copy's snapshot meanwhile).
The copy is made in one step: a copy made in several steps restarts whenever another
connection writes in between, which under steady writing could never finish.

The copy is written beside PATH, checked with `PRAGMA integrity_check`, switched out of
WAL mode (one self-contained file), and only then renamed to PATH, so PATH is never a
half-made backup. Copying the file itself instead is not a backup: recent changes live
in the `-wal` file beside it until a checkpoint, and a copy taken mid-write is torn.

PostgreSQL has its own tool for this (`pg_dump`); docs/deployment.md says how.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from app.errors import Refusal

PG_DUMP_SENTENCE = (
    "This database is PostgreSQL: back it up with pg_dump "
    "(pg_dump --format=custom --file=sprintboard.dump postgresql://…, the URL without "
    "+asyncpg); docs/deployment.md says how, and how to restore it."
)


@dataclass(frozen=True)
class Backup:
    path: Path
    bytes: int
    seconds: float


def sqlite_path(database_url: str) -> Path:
    """The SQLite file behind DATABASE_URL; a Refusal (naming pg_dump) for PostgreSQL."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        raise Refusal(PG_DUMP_SENTENCE)
    if not url.database or url.database == ":memory:":
        raise Refusal("DATABASE_URL names no SQLite file to back up.")
    path = Path(url.database)
    if not path.is_file():
        raise Refusal(f"There is no database at {path}: run `sprintboard db upgrade` first.")
    return path


def back_up(
    source: Path, target: Path, *, replace: bool = False, say: Callable[[str], None] = print
) -> Backup:
    """Copy the SQLite database at `source` to `target`, consistent and checked."""
    target = target.expanduser().resolve()
    if target == source.resolve():
        raise Refusal("The backup cannot be the database itself: name another file.")
    if target.exists() and not replace:
        raise Refusal(f"{target} exists already: name a new file, or pass --force to replace it")
    if not target.parent.is_dir():
        raise Refusal(f"There is no folder {target.parent} to write the backup in.")
    partial = target.with_name(target.name + ".partial")
    started = time.monotonic()
    say(f"backing up {source} ({_megabytes(source.stat().st_size)}) to {target}…")
    try:
        _copy(source, partial)
        say("checking the copy (PRAGMA integrity_check)…")
        _check(partial)
        _sync(partial)
        os.replace(partial, target)
    except sqlite3.Error as error:
        raise Refusal(f"The backup failed and was not kept: {error}") from error
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return Backup(target, target.stat().st_size, time.monotonic() - started)


def _copy(source: Path, partial: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()  # a leftover of a backup that was cut off
    reader = sqlite3.connect(source, timeout=30)
    try:
        writer = sqlite3.connect(partial)
        try:
            reader.backup(writer)  # one step: see the module's docstring
            writer.execute("PRAGMA journal_mode=DELETE")  # one file, no -wal beside it
        finally:
            writer.close()
    finally:
        reader.close()


def _sync(path: Path) -> None:
    """On the disk before it is renamed into place (a crash then leaves no torn backup)."""
    with path.open("rb") as copy:
        os.fsync(copy.fileno())


def _check(partial: Path) -> None:
    checker = sqlite3.connect(partial.as_uri() + "?mode=ro", uri=True)
    try:
        found = [row[0] for row in checker.execute("PRAGMA integrity_check")]
    finally:
        checker.close()
    if found != ["ok"]:
        raise Refusal(
            "The copy failed its integrity check and was not kept: " + "; ".join(found[:5])
        )


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def describe(backup: Backup) -> str:
    """The line the command ends with: where, how big, how long."""
    return f"{backup.path} ({_megabytes(backup.bytes)}, checked) in {backup.seconds:.1f} s"
