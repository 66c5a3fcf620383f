"""Server-sent events encoding: one `data:` line per line of the payload."""

from __future__ import annotations

import re

RETRY_MS = 2000
_LINE_BREAKS = re.compile(r"\r\n|\r|\n")


def encode(*, data: str, event: str | None = None, id: int | None = None) -> bytes:
    """One SSE message. Newlines inside `data` become separate `data:` lines, so no
    payload can end the message early or smuggle in its own `id:` or `event:` field."""
    lines = []
    if id is not None:
        lines.append(f"id: {int(id)}")
    if event is not None:
        if _LINE_BREAKS.search(event):
            raise ValueError("an event name cannot contain a line break")
        lines.append(f"event: {event}")
    lines.extend(f"data: {line}" for line in _LINE_BREAKS.split(data))
    return ("\n".join(lines) + "\n\n").encode()


def comment(text: str = "") -> bytes:
    """A comment line: keeps proxies and the browser from timing the stream out."""
    return f": {_LINE_BREAKS.sub(' ', text)}\n\n".encode()


def retry(ms: int = RETRY_MS) -> bytes:
    return f"retry: {int(ms)}\n\n".encode()
