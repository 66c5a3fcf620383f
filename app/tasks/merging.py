"""Saving a form opened a while ago: apply what that person changed, and nothing else.

An edit page carries the version it was opened at and the values it showed (its
*base*); a save brings them back with what the person typed (*mine*). Against what is
stored now (*theirs*), field by field:

| mine vs base | theirs vs base | outcome |
|---|---|---|
| same | any | not the person's change: theirs stays |
| changed | same | only the person changed it: mine is written |
| changed | changed, to mine | both made the same change: nothing to do |
| changed | changed, to something else | a conflict: nothing at all is saved |

A page opened at the current version has base == theirs, so everything typed applies.
Without a base (a page from before this rule, or one that lost its hidden fields) but
with a stale version, every field that differs is a conflict: nothing is lost that way
either. Life-cycle changes (take … complete) bump the version but no field here, so
they never make a conflict.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.errors import Refusal

Values = Mapping[str, Any]


@dataclass(frozen=True)
class Opened:
    """What an edit page was opened at: its version, and the values it showed (None
    when the page did not say)."""

    version: int
    base: Values | None = None


@dataclass(frozen=True)
class FieldConflict:
    """One field someone else changed to another value since the page was opened."""

    name: str
    theirs: Any
    mine: Any
    by: str | None  # who changed it last (None when the log does not say)
    at: dt.datetime | None

    @property
    def label(self) -> str:
        return label(self.name)

    @property
    def theirs_text(self) -> str:
        return shown(self.name, self.theirs)


class EditConflict(Refusal):
    """Nothing was saved: `conflicts` name the fields someone else changed meanwhile."""

    status = 409
    code = "edit_conflict"

    def __init__(
        self,
        what: str,
        conflicts: Sequence[FieldConflict],
        version: int,
        current: Values,
        merged: Values,
    ) -> None:
        names = labels([c.name for c in conflicts])
        super().__init__(
            f"Someone else changed the {names} of this {what} since you opened it. "
            "Nothing was saved: compare, then save again to keep your text."
        )
        self.conflicts = list(conflicts)
        self.version = version  # the current one: saving the conflict view applies it
        self.current = current
        # What the page's other fields should now hold: for a field the person did not
        # change, its current value (someone else's change, which the page never showed:
        # left as it was, saving again would write the old value back over it).
        self.merged = merged


def merge(
    opened: Opened | None, version: int, mine: Values, theirs: Values
) -> tuple[dict[str, Any], list[str]]:
    """The fields to write (name → mine) and the names of the fields in conflict."""
    if opened is None or opened.version == version:
        base: Values = theirs
    elif opened.base is None:
        base = {}  # nothing to tell the person's changes from others': all that differ clash
    else:
        base = opened.base
    changes: dict[str, Any] = {}
    conflicts: list[str] = []
    for name, value in mine.items():
        stored = theirs.get(name)
        if name in base and value == base[name]:
            continue  # not changed on this page
        if value == stored:
            continue  # already so (both made the same change, or nobody changed it)
        if name in base and stored == base[name]:
            changes[name] = value
        else:
            conflicts.append(name)
    return changes, conflicts


LABELS = {
    "title": "title",
    "description": "description",
    "ac_refs": "acceptance criteria",
    "estimate_hours": "estimate",
    "points": "points",
}


def label(name: str) -> str:
    """How a field is named to people: "title", "estimate", "AC2", …"""
    if name.startswith("ac-"):
        return "AC" + name.removeprefix("ac-")
    return LABELS.get(name, name)


def labels(names: Sequence[str]) -> str:
    """ "title", "title and description", "title, estimate and AC2"."""
    words = [label(n) for n in names]
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def shown(name: str, value: Any) -> str:
    """A stored value as a person reads it (and as `data-theirs` carries it)."""
    if value is None:
        return ""
    if name == "ac_refs":
        return ", ".join(value)
    if name.startswith("ac-"):
        given, when, then = value
        return f"Given {given}, when {when}, then {then}."
    return str(value)
