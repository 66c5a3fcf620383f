"""The fan-out loop: announced ids in, rendered frames out to this instance's streams.

It reads new events from the log (the source of truth) after the last id it handled for
each organization, so an announcement that arrives late, twice, or folded with others
loses nothing. It renders each event once and hands the same frame to every stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import statistics
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict
from typing import Any, Protocol

from sqlalchemy import bindparam, select

from app import metrics
from app.auth.identities import Change, Identities
from app.db import Database
from app.db.outbox import Outbox
from app.events.hub import SHUTDOWN, Frame, Hub, Notice, Subscriber, Whose
from app.events.log import last_event_id, newest_event_ids
from app.live.presence import Presence, Seen
from app.live.render import Renderer
from app.models import TaskEvent
from app.outages import log_failure

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0
MIN_SWEEP_SECONDS = 0.05
BATCH = 500
# A slow look at the log for organizations with open streams: a net under any lost
# announcement (Redis pub/sub drops messages without telling anyone).
SAFETY_POLL_SECONDS = 10.0


# Built once (building a statement costs more than running it).
_EVENTS_AFTER = (
    select(TaskEvent)
    .where(TaskEvent.org_id == bindparam("org_id"), TaskEvent.id > bindparam("after"))
    .order_by(TaskEvent.id)
    .limit(bindparam("limit"))
)


class Broker(Protocol):
    kind: str
    healthy: bool

    on_connected: Callable[[], None]
    on_control: Callable[[dict[str, Any]], None]
    on_presence: Callable[[dict[str, Any]], None]

    def announce(self, org_id: int, event_id: int) -> None: ...
    def wake(self, org_id: int, event_id: int) -> None: ...
    def control(self, command: dict[str, Any]) -> None: ...
    def share_presence(self, message: dict[str, Any]) -> None: ...
    def batches(self) -> AsyncIterator[dict[int, int]]: ...
    async def start(self) -> None: ...
    async def close(self) -> None: ...


class Reset(Exception):
    """The cursor is outside the replay window: the client must reload. `newest` is
    where the stream goes on from."""

    def __init__(self, newest: int) -> None:
        super().__init__(newest)
        self.newest = newest


class LiveUpdates:
    """Owns the hub, the broker and the fan-out task of one app instance."""

    def __init__(
        self,
        db: Database,
        renderer: Renderer,
        broker: Broker,
        *,
        window: int,
        heartbeat: float = HEARTBEAT_SECONDS,
        identities: Identities | None = None,
    ) -> None:
        self.db = db
        self.renderer = renderer
        self.broker = broker
        self.hub = Hub()
        self.presence = Presence(self.hub, broker, self._render_presence)
        # Who is asking, cached (auth's, app/auth/identities.py); a change of it ends the
        # streams it names: here, then on the other instances through the broker, and
        # from the log if that is lost. Started and stopped by its owner.
        self.identities = identities or Identities(db)
        self.identities.apply = self._end_streams_of
        self.window = window
        self.heartbeat = heartbeat
        self._last_seen: dict[int, int] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        async with self.db.read() as session:
            self._last_seen = await newest_event_ids(session)
        self.broker.on_connected = self._connected
        self.broker.on_control = self._apply_control
        self.broker.on_presence = self.presence.hear
        await self.broker.start()
        self.presence.start()
        self._tasks = [
            asyncio.create_task(self._run(), name="sprintboard-fanout"),
            asyncio.create_task(self._poll(), name="sprintboard-log-poll"),
            asyncio.create_task(self._beat(), name="sprintboard-heartbeat"),
        ]

    async def stop(self) -> None:
        times = self.renderer.render_times
        if times:
            log.info(
                "rendered %d events (median %.2f ms each)",
                len(times),
                statistics.median(times) * 1000,
            )
        if self.presence.notices_sent:
            log.info("sent %d presence notices", self.presence.notices_sent)
        await self.end_all_streams()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.broker.close()

    async def _render_presence(self, key: tuple[int, int], viewers: Sequence[Seen]) -> Notice:
        return await self.renderer.presence_notice(key, viewers)

    async def end_all_streams(self) -> None:
        """The server is stopping: every stream is told when to come back, and ends.
        Presence stops first, so that these leaves are not sent (see Presence.stop)."""
        await self.presence.stop()
        self.hub.close_all(SHUTDOWN)

    def _connected(self) -> None:
        """The broker (re)connected: what it may have missed is in the log, and the other
        instances may have lost what this one's presence is."""
        self.catch_up_everything()
        self.presence.share_whole()

    def catch_up_everything(self) -> None:
        """After a broker (re)connect: check the log for every organization served here."""
        task = asyncio.create_task(self._check_log())
        self._tasks.append(task)
        task.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)

    async def _check_log(self) -> None:
        """Compare every organization's newest event with where the fan-out stands.

        Organizations with streams here are caught up; for the others the mark just
        moves on, so a stream opened later "from now" really starts now (their events
        may come from another process that announced nothing, like the CLI).
        """
        async with self.db.read() as session:
            newest = await newest_event_ids(session)
        for org_id, last in newest.items():
            if last <= self._last_seen.get(org_id, 0):
                continue
            if self.hub.has_subscribers(org_id):
                self.broker.wake(org_id, last)
            else:  # nobody to send them to; checked after the query, so no stream misses them
                self._skip(org_id, last)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(SAFETY_POLL_SECONDS)
            try:
                await self._check_log()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the database may be briefly away: the next round
                log_failure(log, "checking the event log failed", error)  # retries

    async def _beat(self) -> None:
        while True:
            # Twice per period: waking ten thousand streams takes a moment, and each must
            # send a comment within every period whatever the timing.
            await asyncio.sleep(max(self.heartbeat / 2, MIN_SWEEP_SECONDS))
            self.hub.beat()

    def _apply_control(self, command: dict[str, Any]) -> None:
        """Another instance committed a change of who may do what."""
        if "identity_change" in command:
            self.identities.learn([Change(**command["identity_change"])])
            return
        # From an instance of the release before the change log (during a rolling
        # deploy): it names the streams to close, and says nothing else.
        whose = Whose.named_in(command)
        if not whose.anyone:
            self.identities.forget_all()
            self.hub.close_where(str(command.get("reason", "closed")), whose)

    def committed(self, box: Outbox) -> None:
        """Called after a write commits (app/db/outbox.py): who may do what first, so
        that no stream outlives a revocation by an event; then the events (even when
        the first step fails: the write is committed and its events must go out)."""
        try:
            if box.identity_changes:
                self.identity_changed(box.identity_changes)
        finally:
            if box.events:
                self.on_commit(box.events)

    def identity_changed(self, changes: Sequence[Change]) -> None:
        """Called after a write that changed who may do what commits (sign-outs, revoked
        tokens, roles): forget and close here at once, and tell the other instances."""
        self.identities.learn(changes)
        for change in changes:
            if not change.ends_streams:
                continue  # renames: the log brings them everywhere within the bound
            # The top-level fields are what an instance of the previous release reads
            # (the streams to close) while a rolling deploy runs both.
            message = change.as_message()
            legacy = {"reason": change.reason, **asdict(Whose.named_in(message))}
            self.broker.control({**legacy, "identity_change": message})

    def _end_streams_of(self, changes: Sequence[Change]) -> None:
        for change in changes:
            whose = Whose.named_in(change.as_message())
            if change.ends_streams and not whose.anyone:  # never "everyone"
                self.hub.close_where(change.reason, whose)

    def on_commit(self, events: Sequence[TaskEvent]) -> None:
        """Called after a write commits: announce its events (never blocks)."""
        metrics.EVENTS.inc(len(events))
        newest: dict[int, int] = {}
        for event in events:
            newest[event.org_id] = max(newest.get(event.org_id, 0), event.id)
        for org_id, event_id in newest.items():
            self.broker.announce(org_id, event_id)

    async def _run(self) -> None:
        async for batch in self.broker.batches():
            for org_id, upto in batch.items():
                await self._catch_up_safely(org_id, upto)

    async def _catch_up_safely(self, org_id: int, upto: int) -> None:
        delay = 0.2
        while True:
            try:
                await self.catch_up(org_id, upto)
                return
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the database may be briefly away: retry, never die
                log_failure(log, f"fan-out for organization {org_id} failed; retrying", error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _skip(self, org_id: int, upto: int) -> None:
        """Move on to `upto` without rendering what lies between."""
        self._last_seen[org_id] = upto
        self.renderer.forget(org_id)

    async def catch_up(self, org_id: int, upto: int) -> None:
        """Publish every event of `org_id` after the last one handled, up to `upto` at least."""
        start = self._last_seen.get(org_id, 0)
        if upto <= start:
            return
        if not self.hub.has_subscribers(org_id):
            # Nobody is listening here; a stream that opens later replays from the log.
            self._skip(org_id, upto)
            return
        if upto - start > self.window:
            # Too far behind to send every frame: close the streams; their clients come
            # back with their cursors and get a replay or a reset from the log.
            for subscriber in self.hub.subscribers(org_id):
                subscriber.close("behind")
            self._skip(org_id, upto)
            return
        while True:
            events = await self.read_events(org_id, after=start, limit=BATCH)
            if not events:
                break
            for event, frame in zip(
                events, await self.renderer.frames(org_id, events), strict=True
            ):
                metrics.DELIVERIES.inc(self.hub.publish(frame))
                # From the commit to the frame queued on every stream here.
                metrics.FANOUT_LAG.observe(max(0.0, time.time() - event.created_at.timestamp()))
            start = events[-1].id
            self._last_seen[org_id] = start
            if len(events) < BATCH:
                break

    async def read_events(
        self, org_id: int, *, after: int, limit: int, upto: int | None = None
    ) -> list[TaskEvent]:
        """The organization's events after `after` (and up to `upto`), oldest first."""
        async with self.db.read() as session:
            if upto is None:  # the fan-out's own read, every event
                params = {"org_id": org_id, "after": after, "limit": limit}
                return list(await session.scalars(_EVENTS_AFTER, params))
            query = (
                select(TaskEvent)
                .where(TaskEvent.org_id == org_id, TaskEvent.id > after, TaskEvent.id <= upto)
                .order_by(TaskEvent.id)
                .limit(limit)
            )
            return list(await session.scalars(query))

    async def newest_id(self, org_id: int) -> int:
        async with self.db.read() as session:
            return await last_event_id(session, org_id)

    async def replay(self, subscriber: Subscriber, cursor: int | None) -> tuple[list[Frame], int]:
        """What a stream opening at `cursor` must send first, and the id it is then at.

        Call after subscribing: anything committed from here on reaches the subscriber's
        queue too, and ids at or below the returned one are dropped there as duplicates.
        """
        # Where this instance's fan-out stands: anything after it reaches the queue.
        # Asking the log is needed only for an organization not seen here yet, or for a
        # page rendered from a log the fan-out has not caught up with. (Opening 10,000
        # streams must not mean 10,000 queries.)
        newest = self._last_seen.get(subscriber.org_id)
        if newest is None or (cursor is not None and cursor > newest):
            newest = await self.newest_id(subscriber.org_id)
        if cursor is None:
            return [], newest
        if cursor > newest or cursor < newest - self.window:
            raise Reset(newest)
        frames: list[Frame] = []
        after = cursor
        while after < newest:
            events = await self.read_events(
                subscriber.org_id, after=after, limit=BATCH, upto=newest
            )
            if not events:
                break
            rendered = await self.renderer.frames(subscriber.org_id, events)
            # The same rule as live delivery (`Hub.publish`): what this stream wants.
            frames.extend(frame for frame in rendered if subscriber.wants(frame))
            after = events[-1].id
        return frames, newest
