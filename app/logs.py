"""Log lines: set up once per process (the `serve` command), read by operators.

`LOG_FORMAT=json` makes every line one JSON object (for a log pipeline); the default is
text for people. Each request gets one line from `app.requests` (see `log_request`):
method, route template, status, duration, who and where, and the request id. Never the
URL itself, its query (`?token=`), headers or cookies: no credential reaches a log.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
requests_log = logging.getLogger("app.requests")
HANDLER_NAME = "sprintboard"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(level: int = logging.INFO, fmt: str = "text") -> None:
    """Our loggers' lines go to stderr, one per line, from INFO up, as text or JSON.

    Each app calls this as it starts serving; a process that serves several apps one
    after another (the tests do) keeps one handler, the latest, so no line is doubled."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.set_name(HANDLER_NAME)
    app_log = logging.getLogger("app")
    for old in [h for h in app_log.handlers if h.get_name() == HANDLER_NAME]:
        app_log.removeHandler(old)
        old.close()
    app_log.addHandler(handler)
    app_log.setLevel(level)
    app_log.propagate = False


def _plain(value: Any) -> str:
    text = str(value)
    return text if text and all(c.isalnum() or c in ".:-_/<>" for c in text) else json.dumps(text)


def log_request(**fields: Any) -> None:
    """The line for one answered request. In text, `key=value` pairs after the summary."""
    summary = f"{fields['method']} {fields['route']} {fields['status']} {fields['duration_ms']} ms"
    # Values are quoted when they could pass for more fields (a forwarded address is
    # whatever the proxy wrote).
    rest = " ".join(
        f"{k}={_plain(v)}"
        for k, v in fields.items()
        if k not in ("method", "route", "status", "duration_ms") and v is not None
    )
    requests_log.info("%s %s", summary, rest, extra={"fields": fields})
