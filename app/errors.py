"""Refusals: a change that cannot happen, with a sentence a person understands.

Domain code raises these; the HTML and JSON layers turn them into their own answers
(a flash or fragment, or `{"error": {"code", "message"}}`) with the same status.
"""

from __future__ import annotations


class Refusal(Exception):
    """Nothing changed, and `message` says why."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadInput(Refusal):
    """Something the client sent cannot be read (a malformed cursor, say)."""

    status = 400
    code = "bad_cursor"


class Unauthenticated(Refusal):
    status = 401
    code = "unauthenticated"


class NotFound(Refusal):
    status = 404
    code = "not_found"


class Forbidden(Refusal):
    status = 403
    code = "forbidden"


class Conflict(Refusal):
    status = 409
    code = "conflict"


class TooMany(Refusal):
    """A limit on what one person may hold at once (open streams, say)."""

    status = 429
    code = "too_many_streams"


class Invalid(Refusal):
    """A field is wrong; `field` names it when there is one."""

    status = 422
    code = "invalid"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class PreconditionFailed(Refusal):
    """The client's copy is not the current one (`If-Match`); `current` is."""

    status = 412
    code = "precondition_failed"

    def __init__(self, message: str, current: dict[str, object]) -> None:
        super().__init__(message)
        self.current = current


class PreconditionRequired(Refusal):
    status = 428
    code = "precondition_required"
