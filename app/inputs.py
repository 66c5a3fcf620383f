"""What arrives from outside, read in one place: numbers, local paths, JSON bodies.

Every number a client sends (a path segment, a query parameter, a header, a form
field) is read here: ASCII digits only and a bounded length, so that `int()` never
sees 5,000 digits (it refuses more than 4,300, with a ValueError that would become a
500) nor a fullwidth `１` or an Arabic-Indic `٣` (which `int()` and `str.isdigit()`
accept). Every path a client asks to be sent to after sign-in is checked here too.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit

from quart import Request as QuartRequest
from werkzeug.exceptions import BadRequest
from werkzeug.routing import IntegerConverter, ValidationError

# Our primary keys and event ids are INTEGER columns: 32-bit on PostgreSQL.
MAX_ROW_ID = 2**31 - 1
# A whole number as people and scripts write it: ASCII digits, at most ten of them
# (MAX_ROW_ID has ten). `re.ASCII` keeps `\d` from matching other scripts' digits.
_WHOLE = re.compile(r"[0-9]{1,10}", re.ASCII)


def whole_number(text: str) -> int | None:
    """The number `text` spells in ASCII digits (at most ten), or None."""
    if not _WHOLE.fullmatch(text):
        return None
    return int(text)


def row_id(text: str | None) -> int | None:
    """An id a row of ours can have (1 … 2³¹−1; 0 for cursors), or None."""
    if text is None:
        return None
    number = whole_number(text)
    return number if number is not None and number <= MAX_ROW_ID else None


class RowIdConverter(IntegerConverter):
    """`<int:…>` in routes: ASCII digits of an id a row can have, else no match (404).

    Werkzeug's own converter matches `\\d+`, which takes any script's digits and any
    length, and then calls `int()` on them.
    """

    regex = r"[0-9]{1,10}"

    def to_python(self, value: str) -> int:
        number = row_id(value)
        if number is None:
            raise ValidationError()
        return number


# ---------------------------------------------------------------- local paths -------

# Browsers drop tabs and line breaks inside URLs and read `\` as `/`, so `/\evil.example`
# and `/<TAB>/evil.example` both lead to `//evil.example`: another site.
_UNSAFE_IN_PATH = re.compile(r"[\x00-\x20\x7f\\]")
# Percent-decoding is applied at most this many times, looking for a hidden `//`.
_DECODE_ROUNDS = 3
MAX_NEXT_LENGTH = 2000


def safe_next(value: str | None) -> str:
    """Where to go after sign-in: `value` if it is a path of this site, else "/".

    Refused: anything a browser could read as another origin (`//x`, `/\\x`, `/<TAB>/x`),
    a scheme or host, control characters, and percent-encoded forms of all of these.
    """
    if not value or len(value) > MAX_NEXT_LENGTH:
        return "/"
    text = value
    for _round in range(_DECODE_ROUNDS + 1):
        if not _is_local_path(text):
            return "/"
        decoded = unquote(text)
        if decoded == text:
            return value
        text = decoded
    return "/"  # still encoded after several rounds: nobody legitimate does that


def _is_local_path(text: str) -> bool:
    if not text.startswith("/") or text.startswith("//"):
        return False
    if _UNSAFE_IN_PATH.search(text):
        return False
    parts = urlsplit(text)
    return not parts.scheme and not parts.netloc


# ---------------------------------------------------------------- JSON bodies -------


class Request(QuartRequest):
    """Quart's request, refusing JSON it cannot parse with a 400, deep nesting included.

    `json.loads` raises RecursionError (not ValueError) on a few thousand nested
    brackets, which Quart does not catch.
    """

    async def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        try:
            return await super().get_json(force=force, silent=silent, cache=cache)
        except RecursionError:
            if silent:
                return None
            raise BadRequest("The JSON body is nested too deeply.") from None
