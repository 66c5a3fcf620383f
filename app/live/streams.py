"""What every live stream shares: cursor and sprint parsing, limits, replay-then-follow."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TypeVar

from quart import current_app, g
from sqlalchemy import select

from app.auth.guards import get_db
from app.errors import NotFound, Refusal
from app.events import sse
from app.events.fanout import LiveUpdates, Reset
from app.events.hub import Closed, Frame
from app.inputs import row_id
from app.models import Sprint

T = TypeVar("T")


class BadCursor(Refusal):
    status = 400
    code = "bad_cursor"


class TooManyStreams(Refusal):
    status = 429
    code = "too_many_streams"


def live_updates() -> LiveUpdates:
    return current_app.extensions["live"]  # type: ignore[no-any-return]


def parse_cursor(last_event_id: str | None, after: str | None) -> int | None:
    """The id to resume after: `Last-Event-ID` wins over `after=`; None means "from now"."""
    for value in (last_event_id, after):
        if value is None or value == "":
            continue
        cursor = row_id(value.strip())
        if cursor is None:
            raise BadCursor(f"“{value[:40]}” is not an event id (a whole number ≥ 0).")
        return cursor
    return None


async def parse_sprint(org_id: int, value: str | None) -> int | None:
    """`sprint=<id>` narrows a stream to one sprint of this organization."""
    if value is None or value == "":
        return None
    sprint_id = row_id(value)
    if sprint_id is None:
        raise BadCursor(f"“{value[:40]}” is not a sprint id.")
    async with get_db().read() as db:
        found = await db.scalar(
            select(Sprint.id).where(Sprint.id == sprint_id, Sprint.org_id == org_id)
        )
    if found is None:
        raise NotFound(f"There is no sprint #{sprint_id} here.")
    return sprint_id


def check_stream_limit(user_id: int) -> None:
    limit = current_app.config["SETTINGS"].max_streams_per_user
    if live_updates().hub.count(user_id=user_id) >= limit:
        raise TooManyStreams(
            f"You already have {limit} live streams open here; close a tab and try again."
        )


@dataclass(frozen=True)
class Viewer:
    """Who opened a stream, and with what credential (a session or a token)."""

    user_id: int
    session_id: int | None = None
    token_id: int | None = None

    @classmethod
    def current(cls) -> Viewer:
        return cls(g.user.id, g.get("session_id"), g.get("token_id"))


async def messages(
    live: LiveUpdates,
    org_id: int,
    viewer: Viewer,
    sprint_id: int | None,
    cursor: int | None,
    *,
    frame: Callable[[Frame], T],
    reset: Callable[[int], T],
    heartbeat: Callable[[], T] | None = None,
    opening: T | None = None,
    closing: T | None = None,
    join: Callable[[list[T]], T] | None = None,
) -> AsyncIterator[T]:
    """Subscribe, replay what the cursor missed, then follow live, with no gap or repeat.

    The subscription comes first, so an event committed while the log is being read
    reaches the queue as well; ids already sent are dropped there. Runs outside any
    request context (a streamed body outlives it), so it is handed what it needs.
    `closing` is sent when the server ends the stream (shutdown, fell behind, signed out).
    With `join`, frames that are waiting together go out as one message (one write).
    This loop runs once per stream per event: keep it free of timers and extra layers.
    """
    with live.hub.subscribe(
        org_id,
        user_id=viewer.user_id,
        sprint_id=sprint_id,
        session_id=viewer.session_id,
        token_id=viewer.token_id,
    ) as subscriber:
        if opening is not None:
            yield opening  # only once subscribed: a client that sees it is counted
        try:
            replayed, sent = await live.replay(subscriber, cursor)
        except Reset as too_far:
            sent, replayed = too_far.newest, []
            yield reset(sent)
        for old in replayed:
            yield frame(old)
        queue = subscriber.queue
        while True:
            waiting = [await queue.get()]
            while not queue.empty():  # a burst, or this stream fell behind:
                waiting.append(queue.get_nowait())  # send what waits in one write
            fresh: list[T] = []
            beat = closed = False
            for item in waiting:  # one pass: this runs for every stream on every event
                if isinstance(item, Frame):
                    if item.id > sent:  # a duplicate of the replay otherwise
                        sent = item.id
                        fresh.append(frame(item))
                elif isinstance(item, Closed):
                    closed = True
                else:
                    beat = True
            if join is not None and len(fresh) > 1:
                yield join(fresh)
            else:
                for message in fresh:
                    yield message
            if beat and heartbeat is not None:
                yield heartbeat()  # the contract: a comment at least every 15 s, always
            if closed:
                break
    if closing is not None:
        yield closing


def sse_frame(item: Frame) -> bytes:
    return item.sse


def sse_reset(newest: int) -> bytes:
    return sse.encode(data="reset", event="reset", id=newest)


def sse_heartbeat() -> bytes:
    return sse.comment("keep-alive")
