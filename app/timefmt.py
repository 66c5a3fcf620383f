"""Time as people read it: phrases ("5 minutes ago"), and an organization's days (its
time zone decides when a day of the sprint begins and ends)."""

from __future__ import annotations

import datetime as dt
import functools
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from app.errors import Invalid


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


def zone(name: str) -> ZoneInfo:
    """The organization's time zone; UTC if the name is unknown to this machine."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def clean_time_zone(value: str) -> str:
    """An IANA time zone name ("Asia/Tokyo"), or Invalid."""
    name = value.strip()
    if name not in time_zones():
        raise Invalid(
            f"“{value[:60]}” is not a time zone; pick one from the list.", field="time_zone"
        )
    return name


@functools.cache
def time_zones() -> list[str]:
    """Every IANA time zone this machine knows, UTC first."""
    return ["UTC", *sorted(z for z in available_timezones() if z != "UTC" and "/" in z)]


def local_today(time_zone: str) -> dt.date:
    return dt.datetime.now(zone(time_zone)).date()
