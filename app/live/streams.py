"""What every live stream shares: the checks before it opens, then replay-then-follow."""

from __future__ import annotations

import contextlib
import functools
import json
import random
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar

from quart import Quart, current_app, g, websocket
from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute

from app import metrics
from app.auth.csrf import same_origin_websocket
from app.auth.guards import resolve_membership, use_membership
from app.db import get_db
from app.errors import BadInput, NotFound, Refusal, TooMany
from app.events import compress
from app.events.hub import SHUTDOWN, Closed, Frame, Heartbeat, Mailbox, Notice, Subscriber
from app.inputs import row_id
from app.live import sse
from app.live.fanout import LiveUpdates, Reset
from app.live.presence import BOARD, Where
from app.models import Sprint, Story, Task

T = TypeVar("T")
M = TypeVar("M")  # one transport's message: bytes (SSE) or str (WebSocket)
# The stream's own message (not an event of the log) that says "too much was missed to
# replay: reload once".
RESET = "reset"


EXTENSION = "live"  # in app.extensions: made and started by create_app


def live_updates(app: Quart | None = None) -> LiveUpdates:
    """The running app's (or `app`'s) live updates: the fan-out, the hub, presence."""
    return (app or current_app).extensions[EXTENSION]  # type: ignore[no-any-return]


def parse_cursor(last_event_id: str | None, after: str | None) -> int | None:
    """The id to resume after: `Last-Event-ID` wins over `after=`; None means "from now"."""
    for value in (last_event_id, after):
        if value is None or value == "":
            continue
        cursor = row_id(value.strip())
        if cursor is None:
            raise BadInput(f"“{value[:40]}” is not an event id (a whole number ≥ 0).")
        return cursor
    return None


async def parse_sprint(org_id: int, value: str | None) -> int | None:
    """`sprint=<id>` narrows a stream to one sprint of this organization."""
    if value is None or value == "":
        return None
    sprint_id = row_id(value)
    if sprint_id is None:
        raise BadInput(f"“{value[:40]}” is not a sprint id.")
    async with get_db().read() as db:
        found = await db.scalar(
            select(Sprint.id).where(Sprint.id == sprint_id, Sprint.org_id == org_id)
        )
    if found is None:
        raise NotFound(f"There is no sprint #{sprint_id} here.")
    return sprint_id


async def parse_task(org_id: int, sprint_id: int | None, value: str | None) -> int | None:
    """`task=<id>`: the stream is a task's page, a task of the stream's sprint."""
    return await _one_of_sprint(org_id, sprint_id, value, "task", Task, Task.sprint_id)


async def parse_story(org_id: int, sprint_id: int | None, value: str | None) -> int | None:
    """`story=<id>`: the stream is a story's edit page, a story of the stream's sprint."""
    return await _one_of_sprint(org_id, sprint_id, value, "story", Story, Story.sprint_id)


async def _one_of_sprint(
    org_id: int,
    sprint_id: int | None,
    value: str | None,
    what: str,
    model: type[Task] | type[Story],
    sprint_column: InstrumentedAttribute[int | None],
) -> int | None:
    """The id in `value` (None when there is none, or when it is no longer in the
    stream's sprint), of a `what` of the organization (`sprint_column`: the sprint it
    is in)."""
    if value is None or value == "":
        return None
    found_id = row_id(value)
    if found_id is None:
        raise BadInput(f"“{value[:40]}” is not a {what} id.")
    if sprint_id is None:
        raise BadInput(f"A {what}'s stream names its sprint too (sprint=).")
    async with get_db().read() as db:
        found = (
            await db.execute(
                select(model.id, sprint_column).where(model.id == found_id, model.org_id == org_id)
            )
        ).one_or_none()
    if found is None:
        raise NotFound(f"There is no {what} #{found_id} here.")
    # Moved to another sprint since the page was opened (a story moved, a sprint
    # completed): the stream still serves the page, which reloads to follow it.
    return found_id if found[1] == sprint_id else None


async def parse_where(org_id: int, sprint_id: int | None, args: Mapping[str, str]) -> Where:
    """Where on the sprint the page is: `task=` (a task's page), `story=` (a story's
    edit page), and `editing=1` for an edit page."""
    return Where(
        task_id=await parse_task(org_id, sprint_id, args.get("task")),
        story_id=await parse_story(org_id, sprint_id, args.get("story")),
        editing=args.get("editing") == "1",
    )


def check_stream_limit(user_id: int) -> None:
    limit = current_app.config["SETTINGS"].max_streams_per_user
    if live_updates().hub.count(user_id=user_id) >= limit:
        raise TooMany(
            f"You already have {limit} live streams open here; close a tab and try again."
        )


@dataclass(frozen=True)
class Viewer:
    """Who opened a stream, and with what credential (a session or a token)."""

    user_id: int
    name: str = ""
    session_id: int | None = None
    token_id: int | None = None

    @classmethod
    def current(cls) -> Viewer:
        return cls(g.user.id, g.user.name, g.get("session_id"), g.get("token_id"))


@dataclass(frozen=True)
class Opening:
    """A stream about to open: whose, of which organization, narrowed how (to a sprint),
    from where (for presence: a task's page, an edit page), after which event."""

    org_id: int
    viewer: Viewer
    sprint_id: int | None
    cursor: int | None
    where: Where = BOARD
    # `Identities.generation` when who is asking was checked: a change learnt between
    # that check and the subscription could not close this stream (see `messages`).
    identities_seen: int = 0


async def open_stream(
    org_ref: str | None, args: Mapping[str, str], last_event_id: str | None = None
) -> Opening:
    """Everything a stream (SSE or WebSocket, HTML or JSON) checks before it opens:
    a signed-in member of the organization (`org_ref`, or their first), a well-formed
    cursor and sprint, and room under the per-person stream limit. Raises the refusal."""
    use_membership(await resolve_membership(org_ref))
    cursor = parse_cursor(last_event_id, args.get("after"))
    sprint_id = await parse_sprint(g.org.id, args.get("sprint"))
    where = await parse_where(g.org.id, sprint_id, args)
    check_stream_limit(g.user.id)
    seen = g.identity_generation
    return Opening(g.org.id, Viewer.current(), sprint_id, cursor, where, seen)


async def open_websocket(org_ref: str | None) -> Opening | tuple[str, int]:
    """`open_stream` for a WebSocket, whose refusals must come before the handshake: a
    foreign Origin is refused too (a browser always sends one)."""
    if not same_origin_websocket():
        return "This connection came from another site and was refused.", 403
    try:
        return await open_stream(org_ref, websocket.args)
    except Refusal as refusal:
        return refusal.message, refusal.status


class Encoder(Protocol[M]):
    """How one transport writes a stream's messages: SSE plain or gzip (bytes), the
    page's WebSocket (HTML) or the integrations' one (JSON). What is the same for every
    stream (a frame, a notice) was rendered and encoded once; what one stream alone is
    sent (its hello, a reset, its closing words) is made here. A message the transport
    does not send is None."""

    def hello(self) -> M | None: ...
    def frame(self, frame: Frame) -> M: ...
    def notice(self, notice: Notice) -> M: ...
    def reset(self, newest: int) -> M: ...
    def heartbeat(self) -> M | None: ...
    def closing(self, reason: str) -> M | None: ...
    def join(self, messages: list[M]) -> M | None:
        """Messages waiting together as one write, if the transport can (else None)."""
        ...


@dataclass
class Following:
    """Where one stream stands: the newest event id it was sent, the presence notice it
    was sent last, and why the server ended it (once it has)."""

    sent: int
    shown: Notice | None = None
    ended: str | None = None


async def messages(
    live: LiveUpdates, opening: Opening, encoder: Encoder[M], *, present: bool = False
) -> AsyncIterator[M]:
    """Subscribe, replay what the cursor missed, then follow live, with no gap or repeat,
    each message written by `encoder`; when the server ends the stream (shutdown, fell
    behind, signed out), its closing words last, once unsubscribed.

    Runs outside any request context (a streamed body outlives it), so it is handed what
    it needs. With `present`, a page's stream narrowed to a sprint, the viewer counts as
    looking at that sprint (and where on it) for as long as the stream is open."""
    with contextlib.ExitStack() as stack:
        subscriber = subscribe(stack, live, opening, present=present)
        hello = encoder.hello()
        if hello is not None:
            yield hello  # only once subscribed: a client that sees it is counted
        caught_up, following = await replay(live, opening, subscriber, encoder)
        for message in caught_up:
            yield message
        async for message in follow(subscriber.queue, encoder, following):
            yield message
    closing = encoder.closing(following.ended or "closed")
    if closing is not None:
        yield closing


def subscribe(
    stack: contextlib.ExitStack, live: LiveUpdates, opening: Opening, *, present: bool
) -> Subscriber:
    """Count the stream, subscribe it to its organization's frames (and sprint's
    notices), and with `present` make its viewer present, for as long as `stack` lasts.

    The subscription comes before the replay, so an event committed while the log is
    being read reaches the queue as well (`follow` drops what the replay already sent)."""
    viewer, sprint_id = opening.viewer, opening.sprint_id
    stack.enter_context(metrics.counting(metrics.STREAMS_OPEN))
    subscriber = stack.enter_context(
        live.hub.subscribe(
            opening.org_id,
            user_id=viewer.user_id,
            sprint_id=sprint_id,
            session_id=viewer.session_id,
            token_id=viewer.token_id,
        )
    )
    if live.identities.generation != opening.identities_seen:
        # Someone's access changed since this stream's was checked; that change could
        # not close a stream not yet subscribed. Closed now, the client comes back in a
        # moment and is checked afresh.
        subscriber.close("identity changed")
    if present and sprint_id is not None:
        key = (opening.org_id, sprint_id)
        stack.enter_context(live.presence.present(key, viewer.user_id, viewer.name, opening.where))
    return subscriber


async def replay(
    live: LiveUpdates, opening: Opening, subscriber: Subscriber, encoder: Encoder[M]
) -> tuple[list[M], Following]:
    """What the stream's cursor missed (or a reset, if too much), then who is here now."""
    caught_up: list[M] = []
    try:
        replayed, sent = await live.replay(subscriber, opening.cursor)
    except Reset as too_far:
        sent, replayed = too_far.newest, []
        caught_up.append(encoder.reset(sent))
    caught_up.extend(encoder.frame(old) for old in replayed)
    following = Following(sent)
    if opening.sprint_id is not None:
        shown = live.presence.notice((opening.org_id, opening.sprint_id))
        if shown is not None:  # who is here now, if it changed since the page was made
            caught_up.append(encoder.notice(shown))
            following.shown = shown
    return caught_up, following


async def follow(
    queue: Mailbox[Frame | Notice | Closed | Heartbeat],
    encoder: Encoder[M],
    following: Following,
) -> AsyncIterator[M]:
    """What arrives on the stream's queue, as it arrives, until the server closes it
    (`following.ended` says why). What waits together goes out in one pass and, where
    the transport can, one write. This runs once per stream per event: keep it free of
    timers and extra layers."""
    while True:
        waiting = [await queue.get()]
        while not queue.empty():  # a burst, or this stream fell behind:
            waiting.append(queue.get_nowait())  # send what waits in one write
        fresh: list[M] = []
        notices: dict[int | None, Notice] = {}  # the newest per sprint replaces the rest
        beat = False
        for item in waiting:  # one pass: this runs for every stream on every event
            if isinstance(item, Frame):
                if item.id > following.sent:  # a duplicate of the replay otherwise
                    following.sent = item.id
                    fresh.append(encoder.frame(item))
            elif isinstance(item, Notice):
                if item is not following.shown:
                    notices[item.sprint_id] = item
            elif isinstance(item, Closed):
                following.ended = item.reason
            else:
                beat = True
        fresh.extend(encoder.notice(item) for item in notices.values())
        joined = encoder.join(fresh) if len(fresh) > 1 else None
        for message in [joined] if joined is not None else fresh:
            yield message
        if beat and (heartbeat := encoder.heartbeat()) is not None:
            yield heartbeat  # the contract: a comment at least every 15 s, always
        if following.ended is not None:
            return


# After a shutdown, when to come back: a moment spread over this range (ms), so that
# ten thousand browsers do not all return in the same millisecond.
SHUTDOWN_RETRY_MS = (500, 5000)
BEHIND_RETRY_MS = 500


def comeback_ms(reason: str) -> int:
    """How long a client whose stream the server ended should wait before resuming."""
    if reason == SHUTDOWN:
        return random.randint(*SHUTDOWN_RETRY_MS)
    return BEHIND_RETRY_MS  # it fell behind (or is signed out, and will be refused)


@dataclass(frozen=True)
class SseEncoding:
    """An SSE stream's bytes (an `Encoder`): as they are, or gzip-compressed.

    A frame or notice is encoded once for every stream (`Rendered.sse`, `.sse_gzip`);
    what one stream alone is sent (its hello, a reset, its closing `retry:`) goes
    through `encode`, cached, since those few messages repeat across streams."""

    content_encoding: str | None
    start: bytes  # before the first message
    encoded: Callable[[Frame | Notice], bytes]
    encode: Callable[[bytes], bytes]

    @functools.cached_property
    def _hello(self) -> bytes:
        return self.start + self.encode(sse.retry())

    @functools.cached_property
    def _heartbeat(self) -> bytes:
        return self.encode(sse.comment("keep-alive"))

    def hello(self) -> bytes:
        return self._hello

    def frame(self, frame: Frame) -> bytes:
        return self.encoded(frame)

    def notice(self, notice: Notice) -> bytes:
        return self.encoded(notice)

    def reset(self, newest: int) -> bytes:
        return self.encode(sse.encode(data=RESET, event=RESET, id=newest))

    def heartbeat(self) -> bytes:
        return self._heartbeat

    def closing(self, reason: str) -> bytes:
        """When to come back: the server is going away, or this stream fell behind."""
        return self.encode(sse.retry(comeback_ms(reason)))

    def join(self, messages: list[bytes]) -> bytes:
        return b"".join(messages)  # deflate blocks concatenate as plain bytes do


PLAIN = SseEncoding(None, b"", encoded=lambda item: item.sse, encode=lambda message: message)
# A closing `retry:` has one of ~4,500 values: each deflated once, not once per stream
# (a reset, rare, passes through the same cache).
GZIP = SseEncoding(
    "gzip",
    compress.GZIP_HEADER,
    encoded=lambda item: item.sse_gzip,
    encode=functools.lru_cache(maxsize=8192)(compress.deflated),
)


@dataclass(frozen=True)
class WebSocketHtml:
    """The page's WebSocket (an `Encoder`): the same HTML as an SSE message's data, one
    message each; the socket's own close says when to come back."""

    def hello(self) -> None:
        return None

    def frame(self, frame: Frame) -> str:
        return frame.html

    def notice(self, notice: Notice) -> str:
        return notice.html

    def reset(self, newest: int) -> str:
        return f'<template data-live-reset data-event-id="{newest}"></template>'

    def heartbeat(self) -> None:
        return None  # the kernel's keepalive probes find a vanished peer

    def closing(self, reason: str) -> None:
        return None

    def join(self, messages: list[str]) -> None:
        return None


@dataclass(frozen=True)
class WebSocketJson(WebSocketHtml):
    """The integrations' WebSocket (an `Encoder`): each event as the API's JSON."""

    org_id: int = 0

    def frame(self, frame: Frame) -> str:
        return frame.json_text

    def notice(self, notice: Notice) -> str:
        return notice.json_text

    def reset(self, newest: int) -> str:
        return json.dumps({"id": newest, "organization_id": str(self.org_id), "type": RESET})


def sse_messages(
    live: LiveUpdates, opening: Opening, encoding: SseEncoding
) -> AsyncIterator[bytes]:
    """The body of one SSE stream, written in `encoding`; the viewer is present."""
    return messages(live, opening, encoding, present=True)
