"""The in-process hub and the SSE encoding: fan-out, slow subscribers, cleanup, framing."""

from __future__ import annotations

import asyncio
import gc
from dataclasses import dataclass

import pytest

from app.events.broker import MemoryBroker
from app.events.hub import (
    HEARTBEAT,
    QUEUE_SIZE,
    WAKE_SLICE,
    Closed,
    Frame,
    Hub,
    Mailbox,
    Notice,
    Whose,
)
from app.live import sse
from app.live.fanout import LiveUpdates
from app.live.streams import Opening, Viewer, messages


def frame(id: int, org: int = 1, sprint: int | None = 7) -> Frame:
    html = f"<p>event {id}</p>"
    return Frame(
        id=id,
        org_id=org,
        sprint_id=sprint,
        type="status_changed",
        html=html,
        sse=sse.encode(data=html, event="status_changed", id=id),
        json={"id": id},
    )


async def test_one_frame_reaches_every_subscriber_of_its_organization_only():
    hub = Hub()
    with (
        hub.subscribe(1, user_id=10) as a,
        hub.subscribe(1, user_id=11) as b,
        hub.subscribe(2, user_id=12) as other,
    ):
        shared = frame(1)
        assert hub.publish(shared) == 2
        assert a.queue.get_nowait() is shared and b.queue.get_nowait() is shared
        assert other.queue.empty()


async def test_many_subscribers_get_the_same_bytes():
    hub = Hub()
    with contextlib_exit_stack() as stack:
        subs = [stack.enter_context(hub.subscribe(1, user_id=i)) for i in range(2000)]
        shared = frame(5)
        assert hub.publish(shared) == 2000
        assert all(s.queue.get_nowait().sse is shared.sse for s in subs)


def drain(queue: Mailbox) -> int:  # type: ignore[type-arg]
    """Take everything waiting in a queue; how many there were."""
    taken = 0
    while not queue.empty():
        queue.get_nowait()
        taken += 1
    return taken


def contextlib_exit_stack():
    import contextlib

    return contextlib.ExitStack()


async def test_a_sprint_narrowed_subscriber_only_gets_that_sprint():
    hub = Hub()
    with hub.subscribe(1, user_id=1, sprint_id=7) as narrow, hub.subscribe(1, user_id=2) as wide:
        hub.publish(frame(1, sprint=8))
        hub.publish(frame(2, sprint=7))
        assert [narrow.queue.get_nowait().id] == [2] and narrow.queue.empty()
        assert drain(wide.queue) == 2


async def test_a_slow_subscriber_is_dropped_without_delaying_the_others():
    hub = Hub()
    with hub.subscribe(1, user_id=1) as slow, hub.subscribe(1, user_id=2) as fast:
        received = []

        async def read_fast() -> None:
            while len(received) < QUEUE_SIZE + 10:
                received.append((await fast.queue.get()).id)

        reader = asyncio.create_task(read_fast())
        for i in range(1, QUEUE_SIZE + 11):
            hub.publish(frame(i))
            await asyncio.sleep(0)  # let the fast reader run between publishes
        await asyncio.wait_for(reader, 5)
        assert received == list(range(1, QUEUE_SIZE + 11))
        assert slow.dropped
        items = []
        while not slow.queue.empty():
            items.append(slow.queue.get_nowait())
        # Nothing queued is sent after the drop: its client resumes from the last frame
        # it got, so skipping one queued frame and sending later ones would lose it.
        assert len(items) == 1 and isinstance(items[0], Closed) and items[0].reason == "behind"


async def test_subscribers_are_removed_when_their_stream_ends():
    hub = Hub()
    with hub.subscribe(1, user_id=1):
        assert hub.count() == 1 and hub.has_subscribers(1)
    assert hub.count() == 0 and not hub.has_subscribers(1)

    async def stream_that_is_cancelled() -> None:
        with hub.subscribe(1, user_id=3) as sub:
            await sub.queue.get()

    task = asyncio.create_task(stream_that_is_cancelled())
    await asyncio.sleep(0)
    assert hub.count(user_id=3) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert hub.count() == 0
    gc.collect()
    assert not [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]


async def test_closing_a_users_streams_leaves_the_others():
    hub = Hub()
    with hub.subscribe(1, user_id=1) as mine, hub.subscribe(1, user_id=2) as theirs:
        assert hub.close_where("signed out", Whose(user_id=1)) == 1
        assert isinstance(mine.queue.get_nowait(), Closed)
        assert theirs.queue.empty()


async def test_streams_close_by_session_token_or_organization():
    hub = Hub()
    with (
        hub.subscribe(1, user_id=1, session_id=10) as laptop,
        hub.subscribe(1, user_id=1, session_id=11) as phone,
        hub.subscribe(1, user_id=1, token_id=5) as bot,
        hub.subscribe(2, user_id=1, session_id=10) as other_org,
    ):
        assert hub.close_where("signed out", Whose(session_id=10, org_id=1)) == 1
        assert isinstance(laptop.queue.get_nowait(), Closed)
        assert phone.queue.empty() and other_org.queue.empty()
        assert hub.close_where("token revoked", Whose(token_id=5)) == 1
        assert isinstance(bot.queue.get_nowait(), Closed)
        assert hub.close_where("removed", Whose(user_id=1, org_id=2)) == 1
        assert isinstance(other_org.queue.get_nowait(), Closed)


HOSTILE = [
    "<script>alert(1)</script>",
    "line one\nline two",
    "carriage\rreturn\r\nand both",
    "id: 999\nevent: reset\ndata: pwned",
    "quotes \" and ' and `back`",
    "\n\n",
]


@pytest.mark.parametrize("payload", HOSTILE)
def test_sse_encoding_never_breaks_the_frame(payload: str):
    encoded = sse.encode(data=payload, event="task_updated", id=42).decode()
    assert encoded.endswith("\n\n") and "\n\n" not in encoded[:-2]
    lines = encoded[:-2].split("\n")
    assert lines[0] == "id: 42" and lines[1] == "event: task_updated"
    assert all(line.startswith("data: ") for line in lines[2:])
    # A client joining the data lines with \n gets the payload back (line breaks normalised).
    joined = "\n".join(line[len("data: ") :] for line in lines[2:])
    assert joined == payload.replace("\r\n", "\n").replace("\r", "\n")


def test_event_names_cannot_carry_line_breaks():
    with pytest.raises(ValueError):
        sse.encode(data="x", event="reset\ndata: y")


def test_comments_and_retry():
    assert sse.comment("keep\nalive") == b": keep alive\n\n"
    assert sse.retry(1500) == b"retry: 1500\n\n"


async def test_one_sweep_asks_every_stream_for_a_keep_alive():
    hub = Hub()
    with hub.subscribe(1, user_id=1) as a, hub.subscribe(2, user_id=2) as b:
        hub.beat()
        assert a.queue.get_nowait() is HEARTBEAT and b.queue.get_nowait() is HEARTBEAT


async def test_stream_counts_per_person_follow_opening_and_closing():
    hub = Hub()
    with hub.subscribe(1, user_id=3), hub.subscribe(2, user_id=3), hub.subscribe(1, user_id=4):
        assert hub.count(user_id=3) == 2 and hub.count(user_id=4) == 1 and hub.count() == 3
    assert hub.count(user_id=3) == 0 and hub.count() == 0


def _live_at(newest: int) -> LiveUpdates:
    """A LiveUpdates whose fan-out has reached `newest` for organization 1: a stream
    opened "from now" needs no database."""
    live = LiveUpdates(db=None, renderer=None, broker=MemoryBroker(), window=100)  # type: ignore[arg-type]
    live._last_seen[1] = newest
    return live


@dataclass(frozen=True)
class Written:
    """An encoder (app.live.streams.Encoder) writing what these tests look for."""

    joins: bool = False

    def hello(self) -> bytes:
        return b"open"

    def frame(self, frame: Frame) -> bytes:
        return frame.sse

    def notice(self, notice: Notice) -> bytes:
        return notice.sse

    def reset(self, newest: int) -> bytes:
        return b"reset"

    def heartbeat(self) -> bytes:
        return b": keep-alive\n\n"

    def closing(self, reason: str) -> bytes:
        return b"bye"

    def join(self, messages: list[bytes]) -> bytes | None:
        return b"".join(messages) if self.joins else None


async def _stream(live: LiveUpdates, *, join: bool = False) -> asyncio.Queue[bytes]:
    """Open a stream on organization 1; every chunk it writes arrives on the queue."""
    chunks: asyncio.Queue[bytes] = asyncio.Queue()

    async def read() -> None:
        opening = Opening(org_id=1, viewer=Viewer(user_id=1), sprint_id=None, cursor=None)
        async for chunk in messages(live, opening, Written(joins=join)):
            chunks.put_nowait(chunk)

    live._tasks.append(asyncio.create_task(read()))  # each test closes it
    assert await chunks.get() == b"open"
    return chunks


async def test_frames_waiting_together_go_out_as_one_write_in_order_without_repeats():
    live = _live_at(newest=4)
    chunks = await _stream(live, join=True)
    for id in (3, 4, 5, 6, 7):  # 3 and 4 were already sent (replay covers them)
        live.hub.publish(frame(id))
    assert await chunks.get() == frame(5).sse + frame(6).sse + frame(7).sse
    live.hub.close_all("shutdown")
    assert await chunks.get() == b"bye"


async def test_without_join_each_frame_is_its_own_message_and_the_keep_alive_still_comes():
    live = _live_at(newest=0)
    chunks = await _stream(live)
    live.hub.beat()
    live.hub.publish(frame(1))
    live.hub.publish(frame(2))
    got = [await chunks.get() for _ in range(3)]
    assert got == [frame(1).sse, frame(2).sse, b": keep-alive\n\n"]
    live.hub.close_all("shutdown")
    assert await chunks.get() == b"bye"


async def test_a_quiet_stream_sends_a_keep_alive_when_the_sweep_comes():
    live = _live_at(newest=0)
    chunks = await _stream(live)
    live.hub.beat()
    assert await chunks.get() == b": keep-alive\n\n"
    live.hub.close_all("shutdown")
    assert await chunks.get() == b"bye"


async def test_closing_a_stream_drops_what_is_queued_so_its_cursor_misses_nothing():
    live = _live_at(newest=0)
    chunks = await _stream(live)
    for id in (1, 2, 3):
        live.hub.publish(frame(id))
    live.hub.close_all("token revoked")  # before the stream had its turn to write
    # Nothing after the last id the client saw: it resumes from there, from the log.
    assert await chunks.get() == b"bye"


async def test_a_mailbox_keeps_order_refuses_beyond_its_limit_and_survives_a_cancelled_read():
    box: Mailbox[int] = Mailbox(2)
    waiting = asyncio.create_task(box.get())
    await asyncio.sleep(0)  # the reader is now waiting on an empty box
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    box.put_nowait(1)
    box.put_nowait(2)
    with pytest.raises(asyncio.QueueFull):
        box.put_nowait(3)
    reader = asyncio.create_task(box.get())
    assert await reader == 1 and box.get_nowait() == 2 and box.empty()
    later = asyncio.create_task(box.get())
    await asyncio.sleep(0)
    box.put_nowait(4)
    assert await later == 4


async def test_many_waiting_streams_are_woken_a_slice_at_a_time_and_all_get_the_frame():
    hub = Hub()
    with contextlib_exit_stack() as stack:
        subs = [stack.enter_context(hub.subscribe(1, user_id=i)) for i in range(5 * WAKE_SLICE)]
        readers = [asyncio.create_task(s.queue.get()) for s in subs]
        await asyncio.sleep(0)  # every reader now waits on its empty mailbox
        shared = frame(9)
        assert hub.publish(shared) == len(subs)
        assert all(not r.done() for r in readers)  # queued, not woken yet
        assert await asyncio.gather(*readers) == [shared] * len(subs)


async def test_a_quiet_put_wakes_nobody_until_asked_and_asks_once():
    box: Mailbox[int] = Mailbox(8)
    reader = asyncio.create_task(box.get())
    await asyncio.sleep(0)
    assert box.put_quietly(1) is True
    assert box.put_quietly(2) is False  # already due for a wake-up
    await asyncio.sleep(0)
    assert not reader.done()
    box.wake()
    assert await reader == 1 and box.get_nowait() == 2
