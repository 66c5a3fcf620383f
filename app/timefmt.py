"""Human time phrases shared by messages and templates."""

from __future__ import annotations

import datetime as dt


def ago(moment: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """Say how long ago `moment` was: "just now", "5 minutes ago", "2 days ago"."""
    if moment is None:
        return ""
    now = now or dt.datetime.now(dt.UTC)
    seconds = max(0, int((now - moment).total_seconds()))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'' if n == 1 else 's'} ago"
    return "just now"


def iso(moment: dt.datetime | None) -> str | None:
    """ISO 8601 in UTC with milliseconds and a Z, as the JSON API promises."""
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
