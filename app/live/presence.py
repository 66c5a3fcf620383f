"""Presence: who else is looking at a sprint (its board, or one of its task pages).

Every open page stream *is* a presence: it joins when the stream opens and leaves when
the stream ends, so nothing polls and nothing is written to the database. A person
counts once however many tabs they have open; while one of their tabs shows a task's
page they are "on" that task (the newest such tab wins).

Changes fold together: a sprint's presence goes out at most once a second (the first
change at once, the ones after it together a second later), as one notice rendered once
for everyone looking at that sprint, like every other frame.

Across instances (Redis) each instance is a replica, in the manner of Phoenix.Tracker:
it owns its own streams' entries and tells the others about them; it never edits
another's. It says, over pub/sub:

- when a sprint's entries here change: that sprint's entries, whole (a replacement, so
  a lost or repeated message does no lasting harm), at most once a second;
- every STATE_SECONDS: all its entries, whole. This is also its heartbeat;
- when it connects (at start, and after Redis comes back): all its entries, so presence
  rebuilds at once after a Redis restart.

When it stops (a deploy) it says nothing more, on purpose: the others keep its people
until it has been silent for DOWN_SECONDS, by which time their browsers are back.

A replica not heard from for DOWN_SECONDS is taken to be down and its entries dropped:
an instance killed with `kill -9` says nothing, so its people are gone within
DOWN_SECONDS + a tick + a flush (~17 s).

Why deltas plus a periodic full state over pub/sub, not Redis keys with a TTL: each
instance needs all of the data in memory anyway (it renders from it), so keys would add
a read per change, or a scan per second per instance, and a refresh write per sprint per
instance every few seconds, only to learn what pub/sub pushes. And as each message
replaces what it names whole, no ordering or merging rules are needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.events.hub import Hub, Notice
from app.outages import log_failure

log = logging.getLogger(__name__)

FOLD_SECONDS = 1.0  # a sprint's presence goes out at most this often
# A notice names at most this many people (and counts the rest): with a thousand people
# on one sprint, a notice naming them all would be ~200 KB, to each of them, every second.
LISTED = 50
STATE_SECONDS = 5.0  # every replica says all it has this often (its heartbeat)
DOWN_SECONDS = 15.0  # a replica silent this long is down: its people are gone
# A stream that ends is most often a page reloading, or changing its filters or grouping:
# the same person's next stream opens a moment later. Their leave waits this long, so
# nobody sees them go and come back; a closed tab still shows as gone within it (and a
# fold), well inside the 5 s the contract allows.
LEAVE_GRACE_SECONDS = 2.0

EVENT = "presence"  # the SSE event name of presence notices
Key = tuple[int, int]  # (organization, sprint)


@dataclass(frozen=True, slots=True)
class Where:
    """Where on a sprint a page is: the task whose page (or edit page) it is, or the
    story whose edit page it is; nothing for the board."""

    task_id: int | None = None
    story_id: int | None = None
    editing: bool = False

    @property
    def somewhere(self) -> bool:
        return self.task_id is not None or self.story_id is not None


BOARD = Where()


@dataclass(frozen=True, slots=True)
class Seen:
    """One person looking at a sprint, and the task (or story) whose page they are on."""

    user_id: int
    name: str
    task_id: int | None = None
    story_id: int | None = None
    editing: bool = False

    @classmethod
    def at(cls, user_id: int, name: str, where: Where) -> Seen:
        return cls(user_id, name, where.task_id, where.story_id, where.editing)

    @property
    def somewhere(self) -> bool:
        return self.task_id is not None or self.story_id is not None

    def as_json(self) -> dict[str, Any]:
        """As the API and the JSON stream write it (string ids, as the rest of the API)."""
        return {
            "userId": str(self.user_id),
            "name": self.name,
            "taskId": None if self.task_id is None else str(self.task_id),
            "storyId": None if self.story_id is None else str(self.story_id),
            "editing": self.editing,
        }


@dataclass(eq=False, slots=True)
class Stay:
    """One open stream's presence (one tab)."""

    key: Key
    user_id: int
    name: str
    where: Where


@dataclass
class PresenceTable:
    """Who is where: this instance's streams, and what the other replicas last said.

    Plain data, no clock and no I/O: every change to what a sprint shows adds the sprint
    to `dirty`, and the caller decides when to send it.
    """

    _local: dict[Key, dict[int, list[Stay]]] = field(default_factory=dict)
    _remote: dict[str, dict[Key, tuple[Seen, ...]]] = field(default_factory=dict)
    _heard: dict[str, float] = field(default_factory=dict)
    dirty: set[Key] = field(default_factory=set)

    # --- this instance's streams -----------------------------------------------------

    def join(self, key: Key, user_id: int, name: str, where: Where = BOARD) -> Stay:
        before = self._person(key, user_id)
        stay = Stay(key, user_id, name, where)
        self._local.setdefault(key, {}).setdefault(user_id, []).append(stay)
        self._note(key, user_id, before)
        return stay

    def leave(self, stay: Stay) -> None:
        people = self._local.get(stay.key, {})
        tabs = people.get(stay.user_id)
        if not tabs or stay not in tabs:
            return
        before = self._person(stay.key, stay.user_id)
        tabs.remove(stay)
        if not tabs:
            del people[stay.user_id]
            if not people:
                del self._local[stay.key]
        self._note(stay.key, stay.user_id, before)

    def _person(self, key: Key, user_id: int) -> Seen | None:
        """One person here, however many tabs: where their newest task or story page is."""
        tabs = self._local.get(key, {}).get(user_id)
        if not tabs:
            return None
        where = next((t.where for t in reversed(tabs) if t.where.somewhere), BOARD)
        return Seen.at(user_id, tabs[-1].name, where)

    def _note(self, key: Key, user_id: int, before: Seen | None) -> None:
        # A second tab on the same page changes nothing anyone sees: nothing to send.
        if self._person(key, user_id) != before:
            self.dirty.add(key)

    def local(self, key: Key) -> tuple[Seen, ...]:
        """This instance's people on a sprint, once each."""
        people = self._local.get(key, {})
        return tuple(seen for user in people if (seen := self._person(key, user)) is not None)

    def local_keys(self) -> list[Key]:
        return list(self._local)

    # --- the other replicas ------------------------------------------------------------

    def hear(
        self, replica: str, sprints: Mapping[Key, Sequence[Seen]], *, whole: bool, now: float
    ) -> None:
        """What another replica says it has: for the sprints named (or all, if `whole`),
        its entries are replaced by these."""
        self._heard[replica] = now
        state = self._remote.setdefault(replica, {})
        if whole:
            for key in [key for key in state if key not in sprints]:
                del state[key]
                self.dirty.add(key)
        for key, entries in sprints.items():
            seen = tuple(entries)
            if state.get(key, ()) != seen:
                self.dirty.add(key)
                if seen:
                    state[key] = seen
                else:
                    state.pop(key, None)

    def expire(self, now: float, down_after: float = DOWN_SECONDS) -> list[str]:
        """Drop the replicas not heard from for `down_after` seconds; returns them."""
        gone = [replica for replica, heard in self._heard.items() if now - heard > down_after]
        for replica in gone:
            del self._heard[replica]
            self.dirty.update(self._remote.pop(replica, {}))
        return gone

    # --- reading ----------------------------------------------------------------------

    def viewers(self, key: Key) -> list[Seen]:
        """Everyone on a sprint, on any instance, once each, sorted by name."""
        people: dict[int, Seen] = {}
        for state in self._remote.values():
            for seen in state.get(key, ()):
                known = people.get(seen.user_id)
                if known is None or (not known.somewhere and seen.somewhere):
                    people[seen.user_id] = seen
        for seen in self.local(key):
            if seen.user_id not in people or seen.somewhere:
                people[seen.user_id] = seen
        return sorted(people.values(), key=lambda s: (s.name.casefold(), s.user_id))

    def take_dirty(self) -> set[Key]:
        dirty, self.dirty = self.dirty, set()
        return dirty


def listed(viewers: Sequence[Seen], limit: int = LISTED) -> list[Seen]:
    """The people a notice or a page names, sorted by name: everyone on a task's page
    first (their cards show them), then the rest, up to `limit`."""
    on_tasks = [seen for seen in viewers if seen.somewhere]
    on_boards = [seen for seen in viewers if not seen.somewhere]
    chosen = (on_tasks + on_boards)[:limit]
    return sorted(chosen, key=lambda s: (s.name.casefold(), s.user_id))


class PresenceBroker(Protocol):
    def share_presence(self, message: dict[str, Any]) -> None: ...


Render = Callable[[Key, Sequence[Seen]], Awaitable[Notice]]


class Presence:
    """This instance's presence: joins and leaves in, folded notices out to its streams,
    and its entries to (and the others' from) the other replicas."""

    def __init__(
        self,
        hub: Hub,
        broker: PresenceBroker,
        render: Render,
        *,
        fold_seconds: float = FOLD_SECONDS,
        leave_grace: float = LEAVE_GRACE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hub = hub
        self.broker = broker
        self.render = render
        self.table = PresenceTable()
        self.replica = uuid.uuid4().hex
        self.fold_seconds = fold_seconds
        self.leave_grace = leave_grace
        self.clock = clock
        self.notices_sent = 0  # how many notices went out (the benchmark reads it)
        self._wake = asyncio.Event()
        self._due: dict[Key, float] = {}  # sprints waiting to go out, and from when
        self._sent_at: dict[Key, float] = {}
        self._shown: dict[Key, tuple[Seen, ...]] = {}  # what the streams were last sent
        self._notices: dict[Key, Notice] = {}  # ... as the notice itself
        self._shared: dict[Key, tuple[Seen, ...]] = {}  # what the other replicas were told
        self._tasks: list[asyncio.Task[None]] = []

    # --- streams ----------------------------------------------------------------------

    @contextlib.contextmanager
    def present(self, key: Key, user_id: int, name: str, where: Where = BOARD) -> Iterator[None]:
        """While the `with` lasts, this person is on the sprint (on a task's or story's
        page, editing it or not, as `where` says)."""
        stay = self.table.join(key, user_id, name, where)
        self._poke()
        try:
            yield
        finally:
            self._leave_later(stay)

    def _leave_later(self, stay: Stay) -> None:
        """The stream ended: the stay goes once LEAVE_GRACE_SECONDS have passed (see
        there). If the same person's page is back by then, nobody sees any change."""

        def leave() -> None:
            self.table.leave(stay)
            self._poke()

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (shutting down): at once
            loop = None
        if loop is None or self.leave_grace <= 0:
            leave()
        else:
            loop.call_later(self.leave_grace, leave)

    def viewers(self, key: Key) -> list[Seen]:
        return self.table.viewers(key)

    def notice(self, key: Key) -> Notice | None:
        """The sprint's latest notice, for a stream that opens after it went out; None
        when a newer one is on its way (a stream gets at most one a second)."""
        if key in self.table.dirty or key in self._due:
            return None
        return self._notices.get(key)

    def _poke(self) -> None:
        if self.table.dirty:
            self._wake.set()

    # --- running ----------------------------------------------------------------------

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._send_changes(), name="sprintboard-presence"),
            asyncio.create_task(self._keep_in_touch(), name="sprintboard-presence-state"),
        ]

    async def stop(self) -> None:
        """Stop before the streams close: their leaves are not sent. A deploy must not
        show on other instances' pages as everyone here leaving and coming back: the
        others keep this instance's people until it has been silent DOWN_SECONDS, and by
        then their browsers are back (on another instance, or on this one restarted)."""
        tasks, self._tasks = self._tasks, []  # (twice is harmless)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _send_changes(self) -> None:
        """Send each changed sprint, at most once per `fold_seconds`: a change after a
        quiet spell at once, the changes that follow it together, a moment later."""
        while True:
            timeout = None
            if self._due:
                timeout = max(0.0, min(self._due.values()) - self.clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            now = self.clock()
            for key in self.table.take_dirty():
                after = self._sent_at.get(key)
                self._due.setdefault(key, now if after is None else after + self.fold_seconds)
            for key in [key for key, due in self._due.items() if due <= now]:
                del self._due[key]
                self._sent_at[key] = now
                try:
                    await self._send(key)
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # a render failed: the next change sends it again
                    log_failure(log, f"sending presence for sprint {key} failed", error)

    async def _send(self, key: Key) -> None:
        local = self.table.local(key)
        if local != self._shared.get(key, ()):
            self._share({key: local}, whole=False)
        viewers = tuple(self.table.viewers(key))
        if viewers == self._shown.get(key, ()):
            return
        if not self.hub.has_subscribers(key[0]):
            self._shown.pop(key, None)
            self._notices.pop(key, None)
            return
        try:
            notice = await self.render(key, viewers)
        except Exception:
            self.table.dirty.add(key)  # try again with the next change or state
            raise
        # Only what was really sent counts as shown (a failed render is sent again).
        self.hub.publish(notice)
        self.notices_sent += 1
        if viewers:
            self._shown[key], self._notices[key] = viewers, notice
        else:
            self._shown.pop(key, None)
            self._notices.pop(key, None)

    async def _keep_in_touch(self) -> None:
        """Each second: drop silent replicas. Every STATE_SECONDS: say all we have."""
        ticks = 0
        while True:
            await asyncio.sleep(1.0)
            ticks += 1
            now = self.clock()
            if self.table.expire(now):
                self._poke()
            if ticks % int(STATE_SECONDS) == 0:
                self.share_whole()
            # Sprints nobody has looked at for a while need no rate-limit memory.
            for key in [k for k, at in self._sent_at.items() if now - at > 10 * self.fold_seconds]:
                if key not in self._due:
                    del self._sent_at[key]

    # --- the other replicas -----------------------------------------------------------

    def share_whole(self) -> None:
        """Tell the other replicas everything this instance has (also its heartbeat)."""
        self._share({key: self.table.local(key) for key in self.table.local_keys()}, whole=True)

    def _share(self, sprints: dict[Key, tuple[Seen, ...]], *, whole: bool) -> None:
        if whole:
            self._shared = {}
        for key, seen in sprints.items():
            if seen:
                self._shared[key] = seen
            else:
                self._shared.pop(key, None)
        self.broker.share_presence(
            {
                "replica": self.replica,
                "whole": whole,
                "sprints": [
                    [
                        org,
                        sprint,
                        [[s.user_id, s.name, s.task_id, s.story_id, s.editing] for s in seen],
                    ]
                    for (org, sprint), seen in sprints.items()
                ],
            }
        )

    def hear(self, message: dict[str, Any]) -> None:
        """Another replica's message (see the module's docstring); malformed ones raise
        ValueError, TypeError or KeyError and change nothing."""
        replica = str(message["replica"])
        if replica == self.replica:
            return  # our own, back from Redis
        sprints = {
            (int(org), int(sprint)): [_seen(*entry) for entry in entries]
            for org, sprint, entries in message["sprints"]
        }
        self.table.hear(replica, sprints, whole=bool(message.get("whole")), now=self.clock())
        self._poke()


def _seen(
    user: object, name: object, task: object, story: object = None, editing: object = False
) -> Seen:
    """An entry as another replica sent it: `[user, name, task, story, editing]` (the
    previous release sends the first three, during a rolling deploy)."""
    return Seen(
        int(user),  # type: ignore[call-overload]
        str(name),
        None if task is None else int(task),  # type: ignore[call-overload]
        None if story is None else int(story),  # type: ignore[call-overload]
        bool(editing),
    )
