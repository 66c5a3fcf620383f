"""When the database cannot be reached, or SQLite's disk is full: "try again shortly".

Neither is a bug of ours, and neither loses anything: the change that met it was rolled
back whole, and the same request succeeds once the database is back (the pool makes new
connections by itself; nothing restarts). So the answer is 503 with `Retry-After` and a
sentence a person understands, never 500, and the log says which cause once a minute
rather than a traceback per request.

`cause_of` reads an exception (and what it wraps) for one of the two causes; the app's
error handler asks it before treating an error as ours.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import time
from enum import StrEnum

import asyncpg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
LOG_EVERY_SECONDS = 60.0


class Cause(StrEnum):
    UNREACHABLE = "database_unreachable"
    DISK_FULL = "disk_full"

    @property
    def sentence(self) -> str:
        if self is Cause.DISK_FULL:
            return "Saving is paused — the server's disk is full; try again in a moment."
        return "Saving is paused — the database is unreachable; try again in a moment."


# SQLite's result codes for a full disk (SQLITE_FULL) and a failed write (SQLITE_IOERR,
# which a full disk also gives when the journal cannot grow).
_SQLITE_FULL = {sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR}


def cause_of(error: BaseException) -> Cause | None:
    """The outage `error` comes from, if it comes from one (None: it is something else)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        found = _cause_here(current)
        if found is not None:
            return found
        # Down the chain SQLAlchemy and the drivers build (`orig`, `raise … from`), not
        # into whatever was being handled when an error of ours was raised.
        wrapped = current.orig if isinstance(current, DBAPIError) else None
        current = wrapped or current.__cause__
    return None


def _cause_here(error: BaseException) -> Cause | None:
    if isinstance(error, sqlite3.Error):
        code = getattr(error, "sqlite_errorcode", None)
        if (code is not None and code & 0xFF in _SQLITE_FULL) or "disk is full" in str(error):
            return Cause.DISK_FULL
        return None
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return Cause.UNREACHABLE
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return Cause.DISK_FULL
    # The server went away or is not taking connections: refused, reset, timed out (or,
    # from asyncpg, "Multiple exceptions: … Connect call failed", an OSError without an
    # errno), or shutting down / starting up (its connection errors, SQLSTATE 57 and 08).
    if isinstance(error, ConnectionError | TimeoutError):
        return Cause.UNREACHABLE
    if isinstance(error, OSError) and (
        error.errno in _NETWORK or "Connect call failed" in str(error)
    ):
        return Cause.UNREACHABLE
    if isinstance(
        error,
        asyncpg.exceptions.PostgresConnectionError  # SQLSTATE 08: no connection
        | asyncpg.exceptions.CannotConnectNowError  # starting up, or shutting down
        | asyncpg.exceptions.AdminShutdownError
        | asyncpg.exceptions.CrashShutdownError,
    ):
        return Cause.UNREACHABLE
    if isinstance(error, PoolTimeout):  # every connection busy waiting on a dead server
        return Cause.UNREACHABLE
    return None


_NETWORK = {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT}


class OncePerMinute:
    """Say each cause in the log at most once a minute (with how many were refused)."""

    def __init__(self) -> None:
        self._said: dict[Cause, float] = {}
        self._since: dict[Cause, int] = {}

    def note(self, cause: Cause, error: BaseException) -> None:
        now = time.monotonic()
        self._since[cause] = self._since.get(cause, 0) + 1
        last = self._said.get(cause)
        if last is not None and now - last < LOG_EVERY_SECONDS:
            return
        refused, self._since[cause] = self._since[cause], 0
        self._said[cause] = now
        log.warning(
            "%s: answering 503 (%d refused since the last line): %s",
            cause.value,
            refused,
            f"{type(error).__name__}: {error}"[:300],
        )


_said = OncePerMinute()  # one per process, like the log it writes to


def note(cause: Cause, error: BaseException) -> None:
    """A request refused, or a background round skipped, because of `cause`."""
    _said.note(cause, error)


def log_failure(logger: logging.Logger, what: str, error: BaseException) -> None:
    """`what` failed with `error`: said once a minute if the database is away (whatever
    failed retries by itself), else in full, with its traceback."""
    cause = cause_of(error)
    if cause is None:
        logger.error(what, exc_info=error)
    else:
        note(cause, error)
