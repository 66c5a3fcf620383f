"""In-process fan-out: one bounded queue per open stream, frames shared by all of them.

A boring broker on purpose: no Quart imports, no awaits while publishing, cleanup in
`finally`. A subscriber that falls behind is dropped (its queue is full); its client
reconnects with its cursor and the event log replays what it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections import Counter, defaultdict, deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Generic, TypeVar

from app.events.compress import deflated

QUEUE_SIZE = 512
# Streams woken per round of the event loop after a publish. Each then writes (~25-40
# µs), so a round stays under a millisecond and requests are read in between, however
# many streams there are. (Measured at 10,000 streams: 200 per round kept the acting
# person waiting ~190 ms, 50 ~60 ms, 10 ~30 ms, with deliveries no slower.)
WAKE_SLICE = 10
T = TypeVar("T")


class Mailbox(Generic[T]):
    """A bounded queue with one reader: what `asyncio.Queue` does for a stream, for less.

    Publishing to ten thousand streams is ten thousand `put_nowait` calls per event, and
    every open stream keeps one of these: one deque, and a future only while waiting.
    """

    __slots__ = ("_items", "_limit", "_waiter", "_wake_due")

    def __init__(self, limit: int) -> None:
        self._items: deque[T] = deque()
        self._limit = limit
        self._waiter: asyncio.Future[None] | None = None
        self._wake_due = False

    def put_nowait(self, item: T) -> None:
        """Add an item and wake the reader at once."""
        self.put_quietly(item)
        self.wake()

    def put_quietly(self, item: T) -> bool:
        """Add an item without waking the reader. True when the reader is waiting and
        must be woken with `wake()` (True once until then, however many items come)."""
        if len(self._items) >= self._limit:
            raise asyncio.QueueFull
        self._items.append(item)
        if self._waiter is not None and not self._wake_due:
            self._wake_due = True
            return True
        return False

    def wake(self) -> None:
        self._wake_due = False
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def get_nowait(self) -> T:
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items.popleft()

    async def get(self) -> T:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()

    def empty(self) -> bool:
        return not self._items

    def clear(self) -> None:
        self._items.clear()


@dataclass(frozen=True, eq=False)
class Rendered:
    """Something every stream of an organization (or of one sprint) is sent, rendered
    and encoded once: the same bytes go to every subscriber."""

    org_id: int
    sprint_id: int | None
    type: str
    html: str
    sse: bytes
    json: dict[str, Any]

    def concerns(self, sprint_id: int) -> bool:
        """Is this for the streams of that sprint?"""
        return self.sprint_id == sprint_id

    @functools.cached_property
    def sse_gzip(self) -> bytes:
        """`sse` deflated on its own, once for every gzip stream (live or replayed);
        `app.events.compress` says why one copy serves them all."""
        return deflated(self.sse)

    @functools.cached_property
    def json_text(self) -> str:
        """`json` encoded, once for every JSON stream (not once per stream)."""
        return json.dumps(self.json)


@dataclass(frozen=True, eq=False)
class Frame(Rendered):
    """One event: it has an id, and a stream that reconnects is replayed the ones after
    its cursor. A move (of a story into another sprint) concerns two sprints: the one it
    left (`sprint_id`) and the one it entered (`to_sprint_id`)."""

    id: int
    to_sprint_id: int | None = None
    # A task freed from someone: its toast is for every page they have open, whatever
    # sprint it follows.
    for_user_id: int | None = None

    def concerns(self, sprint_id: int) -> bool:
        return sprint_id in (self.sprint_id, self.to_sprint_id)


@dataclass(frozen=True, eq=False)
class Notice(Rendered):
    """Something to show that is not an event: it has no id, is never replayed, and a
    newer one of the same kind and sprint replaces an older one still waiting (presence)."""


Item = Frame | Notice


SHUTDOWN = "shutdown"  # the reason streams close when the server stops


class Closed:
    """Put on a subscriber's queue to end its stream; `reason` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class Heartbeat:
    """Put on every queue now and then: the stream sends a keep-alive comment."""


HEARTBEAT = Heartbeat()


@dataclass(eq=False, slots=True)  # one per open stream: no per-instance dict
class Subscriber:
    org_id: int
    user_id: int | None
    sprint_id: int | None = None
    # How the stream was authenticated, so signing out or revoking a token can end it.
    session_id: int | None = None
    token_id: int | None = None
    queue: Mailbox[Item | Closed | Heartbeat] = field(default_factory=lambda: Mailbox(QUEUE_SIZE))
    dropped: bool = False

    def wants(self, item: Item) -> bool:
        if self.sprint_id is None or item.concerns(self.sprint_id):
            return True
        return (
            isinstance(item, Frame)
            and item.for_user_id is not None
            and (item.for_user_id == self.user_id)
        )

    def close(self, reason: str) -> None:
        """End the stream: the reader sees `Closed` next, before anything still queued.

        Frames not yet written are dropped, never skipped over: the client resumes from
        the last id it received and the log replays the rest. (Dropping only the oldest
        to make room would deliver later frames and lose that one for good; and a
        signed-out stream must not send what was queued after the sign-out.)
        """
        self.queue.clear()
        self.queue.put_nowait(Closed(reason))


@dataclass(frozen=True)
class Whose:
    """Which streams: those of a user, in an organization, of a session, of a token.
    Every field given must match; the ones left out match anything."""

    user_id: int | None = None
    org_id: int | None = None
    session_id: int | None = None
    token_id: int | None = None

    @classmethod
    def named_in(cls, fields_of: Mapping[str, Any]) -> Whose:
        """The streams a message or a logged change names by these fields' names."""
        return cls(**{f.name: fields_of.get(f.name) for f in fields(cls)})

    @property
    def anyone(self) -> bool:
        """Names no one in particular: every stream would match."""
        return self == Whose()

    def matches(self, subscriber: Subscriber) -> bool:
        return (
            (self.user_id is None or subscriber.user_id == self.user_id)
            and (self.org_id is None or subscriber.org_id == self.org_id)
            and (self.session_id is None or subscriber.session_id == self.session_id)
            and (self.token_id is None or subscriber.token_id == self.token_id)
        )


class Hub:
    """Who is listening to which organization, and handing them frames."""

    def __init__(self) -> None:
        self._subscribers: dict[int, set[Subscriber]] = defaultdict(set)
        # Kept as counts so checking a stream limit costs the same at 10,000 streams.
        self._per_user: Counter[int | None] = Counter()
        self._total = 0
        self._to_wake: deque[Mailbox[Item | Closed | Heartbeat]] = deque()
        self._waking = False

    @contextlib.contextmanager
    def subscribe(
        self,
        org_id: int,
        *,
        user_id: int | None,
        sprint_id: int | None = None,
        session_id: int | None = None,
        token_id: int | None = None,
    ) -> Iterator[Subscriber]:
        subscriber = Subscriber(
            org_id=org_id,
            user_id=user_id,
            sprint_id=sprint_id,
            session_id=session_id,
            token_id=token_id,
        )
        self._subscribers[org_id].add(subscriber)
        self._per_user[user_id] += 1
        self._total += 1
        try:
            yield subscriber
        finally:
            self._total -= 1
            self._per_user[user_id] -= 1
            if not self._per_user[user_id]:
                del self._per_user[user_id]
            group = self._subscribers.get(org_id)
            if group is not None:
                group.discard(subscriber)
                if not group:
                    del self._subscribers[org_id]

    def subscribers(self, org_id: int) -> list[Subscriber]:
        return list(self._subscribers.get(org_id, ()))

    def has_subscribers(self, org_id: int) -> bool:
        return bool(self._subscribers.get(org_id))

    def count(self, *, user_id: int | None = None) -> int:
        """Open streams here, all of them or one person's."""
        return self._total if user_id is None else self._per_user.get(user_id, 0)

    def publish(self, frame: Item) -> int:
        """Hand a frame (or a notice) to every subscriber of its organization that wants
        it; returns how many took it.

        The frame goes into every queue now, so a later frame can join it in one write;
        the streams are woken a slice per loop round (see `_wake_some`). Never awaits a
        subscriber: a full queue means too slow, and that subscriber is dropped (its
        client resumes from the log).
        """
        delivered = 0
        for subscriber in list(self._subscribers.get(frame.org_id, ())):
            if subscriber.dropped or not subscriber.wants(frame):
                continue
            try:
                self._queue_quietly(subscriber, frame)
                delivered += 1
            except asyncio.QueueFull:
                subscriber.dropped = True
                subscriber.close("behind")
        self._start_waking()
        return delivered

    def beat(self) -> None:
        """Ask every stream to send a keep-alive (one sweep for all, instead of a timer
        per stream). A full queue needs none: its stream is busy or about to be dropped."""
        for group in self._subscribers.values():
            for subscriber in group:
                with contextlib.suppress(asyncio.QueueFull):
                    self._queue_quietly(subscriber, HEARTBEAT)
        self._start_waking()

    def _queue_quietly(self, subscriber: Subscriber, item: Item | Heartbeat) -> None:
        """Queue without waking; a waiting stream is woken later by `_wake_some`."""
        if subscriber.queue.put_quietly(item):
            self._to_wake.append(subscriber.queue)

    def _start_waking(self) -> None:
        if self._to_wake and not self._waking:
            asyncio.get_running_loop().call_soon(self._wake_some)
            self._waking = True

    def _wake_some(self) -> None:
        """Wake the next WAKE_SLICE waiting streams; the rest in the loop's next round.

        Woken all at once, ten thousand streams would write in one round of the loop
        (~0.4 s) before it reads another request, the acting person's among them.
        """
        self._waking = False
        for _ in range(min(WAKE_SLICE, len(self._to_wake))):
            self._to_wake.popleft().wake()
        self._start_waking()  # the rest, in the next round

    def close_where(self, reason: str, whose: Whose) -> int:
        """End the streams `whose` names: signed out, removed, role changed, token revoked."""
        closed = 0
        for org, group in list(self._subscribers.items()):
            if whose.org_id is not None and org != whose.org_id:
                continue
            for subscriber in list(group):
                if whose.matches(subscriber):
                    subscriber.close(reason)
                    closed += 1
        return closed

    def close_all(self, reason: str) -> None:
        for group in list(self._subscribers.values()):
            for subscriber in list(group):
                subscriber.close(reason)
