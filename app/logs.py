"""Log lines: set up once per process (the `serve` command), read by operators."""

from __future__ import annotations

import logging
import sys

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(level: int = logging.INFO) -> None:
    """Our loggers' lines go to stderr, one per line, from INFO up."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    app_log = logging.getLogger("app")
    app_log.addHandler(handler)
    app_log.setLevel(level)
    app_log.propagate = False
