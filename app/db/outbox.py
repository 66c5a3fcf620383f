"""What a write announces once it has committed, and only then.

A write fills its session's outbox (`outbox(session)`): the events it logged
(app/events/log.py) and the changes of who may do what (app/auth/identities.py).
`Database.write` drains it after COMMIT and hands it to the app's after-commit hooks
(the live fan-out, the identity caches); a write that rolled back announces nothing.
The outbox lives in db/ because the write that drains it does: events/ and auth/ fill
it from above.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession


@dataclass
class Outbox:
    events: list[Any] = field(default_factory=list)  # TaskEvent rows, in id order
    identity_changes: list[Any] = field(default_factory=list)  # IdentityChange records

    def __bool__(self) -> bool:
        return bool(self.events or self.identity_changes)


def outbox(session: AsyncSession) -> Outbox:
    """The outbox of the write `session` belongs to (kept in `session.info` under the
    class itself: no string key to mistype)."""
    box = session.info.get(Outbox)
    if box is None:
        box = session.info[Outbox] = Outbox()
    return box  # type: ignore[no-any-return]


def drained(session: AsyncSession) -> Outbox:
    """Take the outbox out of `session` (an empty one if the write announced nothing)."""
    return session.info.pop(Outbox, None) or Outbox()  # type: ignore[no-any-return]
