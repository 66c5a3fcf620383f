"""The sprint cycle under concurrency, on PostgreSQL: a completion, a story move, a new
task, a take or a reorder at the same moment as another. One change is held at a chosen
point (a hook awaits an event the test sets) while the other runs into it; the test
waits until PostgreSQL shows the second one waiting for a lock, then lets the first go.
Neither may fail, deadlock, or leave the books wrong: a completed sprint holds no
unfinished task, every event names the sprint its task was in, and the frozen report
equals a rebuild from the log."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import func, select, text

import app.tasks.cycle as cycle_module
import app.tasks.editing as editing_module
import app.tasks.lifecycle as lifecycle_module
from app.models import Role, Sprint, Story, Task, TaskEvent
from app.tasks.cycle import move_story
from app.tasks.lifecycle import Action
from tests.conftest import ON_POSTGRES
from tests.cycle_kit import Cycle, build

pytestmark = pytest.mark.skipif(not ON_POSTGRES, reason="row locks are PostgreSQL's")


class Hold:
    """Pause one change where `hook` is called, until released."""

    def __init__(self) -> None:
        self.inside, self.gate = asyncio.Event(), asyncio.Event()

    def around(
        self, real: Callable[..., Awaitable[Any]], when: Callable[..., bool] = lambda *a: True
    ):
        async def held(*args: Any, **kwargs: Any) -> Any:
            result = await real(*args, **kwargs)
            if when(*args) and not self.inside.is_set():
                self.inside.set()
                await self.gate.wait()
            return result

        return held


async def someone_waits_for_a_lock(cycle: Cycle) -> None:
    """Until PostgreSQL shows a session of this database waiting for a row lock."""
    for _ in range(500):
        async with cycle.db.read() as s:
            waiting = await s.scalar(
                select(func.count())
                .select_from(text("pg_stat_activity"))
                .where(text("wait_event_type = 'Lock' AND datname = current_database()"))
            )
        if waiting:
            return
        await asyncio.sleep(0.02)  # polling for a condition, not waiting a fixed time
    raise AssertionError("nobody ever waited for a lock")


async def books_are_right(cycle: Cycle, sprint: Sprint) -> None:
    async with cycle.db.read() as s:
        stored = await s.get(Sprint, sprint.id)
        stranded = list(
            await s.scalars(
                select(Task.id).where(Task.sprint_id == sprint.id, Task.status != "completed")
            )
        )
        for task in await s.scalars(select(Task).where(Task.org_id == cycle.org_id)):
            last = await s.scalar(
                select(TaskEvent)
                .where(TaskEvent.task_id == task.id, TaskEvent.new_status.is_not(None))
                .order_by(TaskEvent.id.desc())
            )
            moved_since = await s.scalar(
                select(func.count())
                .select_from(TaskEvent)
                .where(
                    TaskEvent.type.in_(["story_moved", "sprint_completed"]),
                    TaskEvent.id > (last.id if last else 0),
                )
            )
            if last is not None and not moved_since:
                assert last.sprint_id == task.sprint_id, (task.id, last.type)
    assert stored.status == "completed" and stranded == []
    assert stored.report == (await build(cycle, sprint)).as_json()


async def review_sprint(cycle: Cycle) -> tuple[Sprint, Any, Any]:
    sprint = await cycle.plan("Sprint R")
    done = await cycle.story(sprint, "All done", 3, 2)
    half = await cycle.story(sprint, "Half", 2, 2)
    await cycle.advance(sprint)
    await cycle.done(*done.tasks, half.tasks[0])
    await cycle.advance(sprint)
    return sprint, done, half


async def test_a_story_moved_out_while_its_sprint_completes(cycle: Cycle, monkeypatch: Any):
    sprint, _done, half = await review_sprint(cycle)
    hold = Hold()
    monkeypatch.setattr(cycle_module, "place", hold.around(cycle_module.place))
    moving = asyncio.ensure_future(cycle.move(half.story, None))
    await asyncio.wait_for(hold.inside.wait(), 10)
    completing = asyncio.ensure_future(cycle.complete(sprint, "new"))
    await someone_waits_for_a_lock(cycle)
    hold.gate.set()
    await asyncio.wait_for(asyncio.gather(moving, completing), 15)
    await books_are_right(cycle, sprint)
    assert (await cycle.get(Task, half.tasks[0].id)).sprint_id == sprint.id  # done there


async def test_a_task_added_while_its_sprint_completes(cycle: Cycle, monkeypatch: Any):
    sprint, done, _ = await review_sprint(cycle)
    hold = Hold()
    monkeypatch.setattr(editing_module, "lock_places", hold.around(editing_module.lock_places))
    adding = asyncio.ensure_future(cycle.add_task(done.story, "Late"))
    await asyncio.wait_for(hold.inside.wait(), 10)
    completing = asyncio.ensure_future(cycle.complete(sprint, "backlog"))
    await someone_waits_for_a_lock(cycle)
    hold.gate.set()
    late, _ = await asyncio.wait_for(asyncio.gather(adding, completing), 15)
    await books_are_right(cycle, sprint)
    assert (await cycle.get(Task, late.id)).sprint_id is None  # carried to the backlog


async def test_a_task_completed_while_its_sprint_carries_it(cycle: Cycle, monkeypatch: Any):
    sprint, _, half = await review_sprint(cycle)
    after = await cycle.plan("Sprint Next")
    await cycle.act(half.tasks[1], Action.TAKE)
    hold = Hold()
    monkeypatch.setattr(
        lifecycle_module, "_task_for_change", hold.around(lifecycle_module._task_for_change)
    )
    finishing = asyncio.ensure_future(cycle.act(half.tasks[1], Action.COMPLETE))
    await asyncio.wait_for(hold.inside.wait(), 10)
    monkeypatch.undo()  # its retry reads again, unheld
    await cycle.complete(sprint, str(after.id))  # carries it, version and all
    hold.gate.set()
    await asyncio.wait_for(finishing, 15)
    await books_are_right(cycle, sprint)
    task = await cycle.get(Task, half.tasks[1].id)
    assert (task.sprint_id, task.status) == (after.id, "completed")


async def test_two_owners_reorder_the_backlog_at_once(cycle: Cycle, monkeypatch: Any):
    stories = [(await cycle.story(None, f"B{i}", 1, 0)).story for i in range(4)]
    first, last = stories[0], stories[3]
    hold = Hold()
    monkeypatch.setattr(
        cycle_module,
        "place",
        hold.around(cycle_module.place, lambda s, story, b: story.id == first.id),
    )

    def reorder(story: Story, before: int | None) -> Any:
        return cycle.write(
            lambda s: move_story(
                s,
                org_id=cycle.org_id,
                story_id=story.id,
                to_sprint_id=None,
                before=before,
                actor=cycle.scene.alice,
                role=Role.OWNER,
            )
        )

    one = asyncio.ensure_future(reorder(first, None))  # to the end
    await asyncio.wait_for(hold.inside.wait(), 10)
    two = asyncio.ensure_future(reorder(last, first.id))  # before the first
    await someone_waits_for_a_lock(cycle)
    hold.gate.set()
    await asyncio.wait_for(asyncio.gather(one, two), 15)
    async with cycle.db.read() as s:
        order = list(
            await s.scalars(
                select(Story.id)
                .where(Story.org_id == cycle.org_id, Story.sprint_id.is_(None))
                .order_by(Story.position)
            )
        )
        positions = list(
            await s.scalars(
                select(Story.position)
                .where(Story.org_id == cycle.org_id, Story.sprint_id.is_(None))
                .order_by(Story.position)
            )
        )
    assert positions == [1, 2, 3, 4]
    # The last one was already before the first once that went to the end: it stays.
    assert order == [stories[1].id, stories[2].id, last.id, first.id]


async def test_a_planned_sprint_deleted_while_someone_takes_its_work(
    cycle: Cycle, monkeypatch: Any
):
    """The deletion logs one move per story: it holds every story and task of the sprint
    before the first, so a take on a later story waits instead of deadlocking."""
    sprint = await cycle.plan("Sprint Doomed")
    first = await cycle.story(sprint, "First", 1, 1)
    second = await cycle.story(sprint, "Second", 1, 1)
    hold = Hold()
    monkeypatch.setattr(
        cycle_module,
        "append_move_event",
        hold.around(cycle_module.append_move_event),
    )
    deleting = asyncio.ensure_future(
        cycle.write(
            lambda s: cycle_module.delete_sprint(
                s,
                org_id=cycle.org_id,
                sprint_id=sprint.id,
                actor=cycle.scene.alice,
                role=Role.OWNER,
            )
        )
    )
    await asyncio.wait_for(hold.inside.wait(), 10)
    taking = asyncio.ensure_future(cycle.act(second.tasks[0], Action.TAKE))
    await someone_waits_for_a_lock(cycle)
    hold.gate.set()
    await asyncio.wait_for(asyncio.gather(deleting, taking), 15)
    for task in (*first.tasks, *second.tasks):
        assert (await cycle.get(Task, task.id)).sprint_id is None
    assert (await cycle.get(Task, second.tasks[0].id)).status == "owned"


async def test_a_task_taken_while_its_story_is_archived(cycle: Cycle, monkeypatch: Any):
    """Alice archives a story while Bob takes one of its tasks: Bob's take waits for the
    archive, then finds the task archived and is refused; nothing is half done."""
    import app.tasks.tidying as tidying_module

    sprint = await cycle.plan("Sprint A")
    story = await cycle.story(sprint, "Going", 1, 2)
    await cycle.advance(sprint)
    hold = Hold()
    monkeypatch.setattr(
        tidying_module, "_story_and_tasks", hold.around(tidying_module._story_and_tasks)
    )
    archiving = asyncio.ensure_future(
        cycle.write(
            lambda s: tidying_module.archive_story(
                s,
                org_id=cycle.org_id,
                story_id=story.story.id,
                actor=cycle.scene.alice,
                role=Role.OWNER,
            )
        )
    )
    await asyncio.wait_for(hold.inside.wait(), 10)  # its tasks are locked now
    taking = asyncio.ensure_future(cycle.act(story.tasks[0], Action.TAKE))
    await someone_waits_for_a_lock(cycle)
    hold.gate.set()
    archived, took = await asyncio.wait_for(
        asyncio.gather(archiving, taking, return_exceptions=True), 15
    )
    assert not isinstance(archived, BaseException), archived
    assert "is archived" in str(took)
    task = await cycle.get(Task, story.tasks[0].id)
    assert task.archived_at is not None and (task.status, task.owner_id) == ("available", None)
    async with cycle.db.read() as s:
        taken = await s.scalar(
            select(func.count())
            .select_from(TaskEvent)
            .where(TaskEvent.task_id == task.id, TaskEvent.type == "ownership_taken")
        )
    assert taken == 0
