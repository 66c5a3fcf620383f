"""The presence table and its folding, in process: join, leave, tabs, replicas, expiry."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from app.events.hub import Hub, Notice
from app.live.presence import LISTED, Key, Presence, PresenceTable, Seen, Where, listed

SPRINT: Key = (1, 10)
OTHER: Key = (1, 11)


def names(seen: Sequence[Seen]) -> list[tuple[str, int | None]]:
    return [(s.name, s.task_id) for s in seen]


def test_people_join_and_leave_sorted_by_name() -> None:
    table = PresenceTable()
    bob = table.join(SPRINT, 2, "Bob")
    ann = table.join(SPRINT, 1, "ann")
    table.join(OTHER, 3, "Cy")
    assert names(table.viewers(SPRINT)) == [("ann", None), ("Bob", None)]
    assert table.take_dirty() == {SPRINT, OTHER}
    table.leave(bob)
    assert names(table.viewers(SPRINT)) == [("ann", None)]
    table.leave(ann)
    assert table.viewers(SPRINT) == []
    assert table.local_keys() == [OTHER]  # nothing kept for an empty sprint
    table.leave(ann)  # twice: harmless
    assert table.take_dirty() == {SPRINT}


def test_a_person_with_many_tabs_counts_once() -> None:
    table = PresenceTable()
    tabs = [table.join(SPRINT, 2, "Bob") for _ in range(3)]
    assert names(table.viewers(SPRINT)) == [("Bob", None)]
    assert table.take_dirty() == {SPRINT}
    table.join(SPRINT, 2, "Bob")  # a fourth board tab changes nothing anyone sees
    assert table.take_dirty() == set()
    for tab in tabs:
        table.leave(tab)
    assert names(table.viewers(SPRINT)) == [("Bob", None)]  # the fourth is still open
    assert table.take_dirty() == set()


def test_the_newest_task_page_is_where_a_person_is() -> None:
    table = PresenceTable()
    table.join(SPRINT, 2, "Bob")
    first = table.join(SPRINT, 2, "Bob", Where(task_id=7))
    assert names(table.viewers(SPRINT)) == [("Bob", 7)]
    second = table.join(SPRINT, 2, "Bob", Where(task_id=8))
    table.join(SPRINT, 2, "Bob")  # a later board tab does not hide the task page
    assert names(table.viewers(SPRINT)) == [("Bob", 8)]
    table.leave(second)
    assert names(table.viewers(SPRINT)) == [("Bob", 7)]
    table.leave(first)
    assert names(table.viewers(SPRINT)) == [("Bob", None)]


def test_other_replicas_merge_once_per_person_and_expire() -> None:
    table = PresenceTable()
    table.join(SPRINT, 2, "Bob")
    table.take_dirty()
    table.hear("b", {SPRINT: [Seen(2, "Bob", 9), Seen(3, "Cy")]}, whole=True, now=100.0)
    assert names(table.viewers(SPRINT)) == [("Bob", 9), ("Cy", None)]
    assert table.take_dirty() == {SPRINT}
    # The same state again (the periodic full state): nothing changed, nothing to send.
    table.hear("b", {SPRINT: [Seen(2, "Bob", 9), Seen(3, "Cy")]}, whole=True, now=105.0)
    assert table.take_dirty() == set()
    # A delta names one sprint and leaves the others alone.
    table.hear("b", {OTHER: [Seen(4, "Di")]}, whole=False, now=106.0)
    assert names(table.viewers(SPRINT)) == [("Bob", 9), ("Cy", None)]
    assert table.take_dirty() == {OTHER}
    # Silent past the down period: its people are gone; ours stay.
    assert table.expire(now=120.0, down_after=15.0) == []
    assert table.expire(now=121.5, down_after=15.0) == ["b"]
    assert names(table.viewers(SPRINT)) == [("Bob", None)]
    assert table.viewers(OTHER) == []
    assert table.take_dirty() == {SPRINT, OTHER}


def test_a_whole_state_replaces_what_a_replica_said_before() -> None:
    table = PresenceTable()
    table.hear("b", {SPRINT: [Seen(3, "Cy")], OTHER: [Seen(4, "Di")]}, whole=True, now=1.0)
    table.take_dirty()
    table.hear("b", {OTHER: [Seen(4, "Di")]}, whole=True, now=2.0)
    assert table.viewers(SPRINT) == []
    assert table.take_dirty() == {SPRINT}


def test_a_crowd_is_named_up_to_the_cap_people_on_task_pages_first() -> None:
    crowd = [Seen(n, f"Person {n:03}", 900 + n if n % 20 == 0 else None) for n in range(120)]
    named = listed(crowd)
    assert len(named) == LISTED
    on_tasks = [s for s in crowd if s.task_id is not None]
    assert set(on_tasks) <= set(named)  # everyone a card shows is named
    assert named == sorted(named, key=lambda s: (s.name.casefold(), s.user_id))
    assert listed(crowd[:3]) == crowd[:3]


# --- the service: folding, notices, replicas -----------------------------------------


class Shared:
    """A broker that records what the instance told the others."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def share_presence(self, message: dict[str, Any]) -> None:
        self.sent.append(message)


class Rendered:
    """Renders notices as the list of names, and lets a test await the next one."""

    def __init__(self) -> None:
        self.notices: list[list[tuple[str, int | None]]] = []
        self.arrived = asyncio.Event()

    async def __call__(self, key: Key, viewers: Sequence[Seen]) -> Notice:
        self.notices.append(names(viewers))
        self.arrived.set()
        return Notice(key[0], key[1], "presence", "", b"", {"viewers": names(viewers)})

    async def next(self) -> list[tuple[str, int | None]]:
        await asyncio.wait_for(self.arrived.wait(), 5)
        self.arrived.clear()
        return self.notices[-1]


@pytest.fixture
async def service() -> AsyncIterator[tuple[Presence, Hub, Rendered, Shared]]:
    hub, rendered, shared = Hub(), Rendered(), Shared()
    presence = Presence(hub, shared, rendered)
    presence.start()
    try:
        yield presence, hub, rendered, shared
    finally:
        await presence.stop()


async def test_a_burst_of_joins_folds_into_two_notices(service: Any) -> None:
    presence, hub, rendered, shared = service
    with hub.subscribe(1, user_id=99, sprint_id=10) as stream, contextlib.ExitStack() as stack:
        stack.enter_context(presence.present(SPRINT, 1, "Person 000"))
        first = await rendered.next()  # the first change goes out at once
        assert first == [("Person 000", None)]
        for n in range(1, 100):
            stack.enter_context(presence.present(SPRINT, n + 1, f"Person {n:03}"))
        folded = await rendered.next()  # the rest together, a second later
        assert len(folded) == 100
        assert presence.notices_sent == 2
        queued = [stream.queue.get_nowait() for _ in range(2)]
        assert all(isinstance(item, Notice) for item in queued)
        assert stream.queue.empty()
    # What the other replicas were told matches, and is folded the same way.
    deltas = [m for m in shared.sent if m.get("whole") is False]
    assert [len(m["sprints"][0][2]) for m in deltas] == [1, 100]


async def test_a_notice_goes_only_to_its_sprint_and_a_new_stream_gets_the_latest(
    service: Any,
) -> None:
    presence, hub, rendered, _ = service
    with (
        hub.subscribe(1, user_id=98, sprint_id=11) as elsewhere,
        hub.subscribe(1, user_id=97, sprint_id=None) as everything,
        hub.subscribe(2, user_id=96, sprint_id=None) as other_organization,
        hub.subscribe(2, user_id=95, sprint_id=10) as same_sprint_id_elsewhere,
    ):
        with presence.present(SPRINT, 1, "Ann", Where(task_id=5)):
            assert await rendered.next() == [("Ann", 5)]
            assert elsewhere.queue.empty()
            assert other_organization.queue.empty() and same_sprint_id_elsewhere.queue.empty()
            assert isinstance(everything.queue.get_nowait(), Notice)
            latest = presence.notice(SPRINT)
            assert latest is not None and latest.json["viewers"] == [("Ann", 5)]
        assert await rendered.next() == []  # she left
        assert presence.notice(SPRINT) is None


async def test_another_replica_is_heard_until_it_says_it_has_nobody(service: Any) -> None:
    presence, hub, rendered, shared = service
    with hub.subscribe(1, user_id=99, sprint_id=10):
        presence.hear(
            {"replica": "b", "whole": True, "sprints": [[1, 10, [[3, "Cy", None], [4, "Di", 7]]]]}
        )
        assert await rendered.next() == [("Cy", None), ("Di", 7)]
        presence.hear({"replica": presence.replica, "whole": True, "sprints": []})  # our echo
        presence.hear({"replica": "b", "whole": True, "sprints": []})
        assert await rendered.next() == []
        with pytest.raises((ValueError, TypeError, KeyError)):
            presence.hear({"replica": "c", "sprints": [[1, "ten", []]]})
        assert presence.viewers(SPRINT) == []
        # Its whole state, now: everything it has, once; also its heartbeat.
        with presence.present(SPRINT, 1, "Ann"):
            await rendered.next()
            presence.share_whole()
        assert shared.sent[-1]["whole"] is True
        assert shared.sent[-1]["sprints"] == [[1, 10, [[1, "Ann", None, None, False]]]]


def test_an_edit_page_is_presence_that_says_editing() -> None:
    table = PresenceTable()
    board = table.join(SPRINT, 2, "Bob")
    table.join(SPRINT, 2, "Bob", Where(task_id=7, editing=True))
    table.join(SPRINT, 3, "Cy", Where(story_id=4, editing=True))
    assert table.viewers(SPRINT) == [
        Seen(2, "Bob", task_id=7, editing=True),
        Seen(3, "Cy", story_id=4, editing=True),
    ]
    assert Seen(2, "Bob", task_id=7, editing=True).as_json()["editing"] is True
    table.leave(board)  # another tab closing changes nothing of where he is
    assert table.viewers(SPRINT)[0].editing


async def test_another_replica_is_heard_saying_who_is_editing(service: Any) -> None:
    presence, hub, rendered, _ = service
    with hub.subscribe(1, user_id=99, sprint_id=10):
        presence.hear(
            {"replica": "b", "whole": True, "sprints": [[1, 10, [[4, "Di", None, 6, True]]]]}
        )
        await rendered.next()
        assert presence.viewers(SPRINT) == [Seen(4, "Di", story_id=6, editing=True)]


async def test_a_page_reloading_never_shows_its_person_gone() -> None:
    """Bob's page reloads (or changes its filters): his stream ends and another opens a
    moment later. Every change goes out at once here (no folding), yet nobody is ever
    shown Bob gone; when he really leaves, he is gone once the grace is over."""
    hub, rendered, shared = Hub(), Rendered(), Shared()
    presence = Presence(hub, shared, rendered, fold_seconds=0)
    presence.start()
    try:
        with hub.subscribe(1, user_id=99, sprint_id=10):
            with presence.present(SPRINT, 2, "Bob"):
                assert await rendered.next() == [("Bob", None)]
            # The gap before the reloaded page's stream opens: no notice in it (without
            # the grace, one saying he left goes out at once).
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(rendered.arrived.wait(), 0.5)
            with presence.present(SPRINT, 2, "Bob"), presence.present(SPRINT, 3, "Cy"):
                assert await rendered.next() == [("Bob", None), ("Cy", None)]
                assert [] not in rendered.notices
            while await rendered.next() != []:  # both gone, after the grace
                pass
    finally:
        await presence.stop()
