"""A write's outbox: announced once after COMMIT, never after a rollback."""

from __future__ import annotations

import pytest

from app.db import Database
from app.db.outbox import Outbox
from app.events.log import append_event
from app.events.types import EventType
from app.models import Task
from tests.factories import Scene


async def test_a_committed_write_announces_its_events_once_and_a_rolled_back_one_nothing(
    db: Database, scene: Scene
) -> None:
    heard: list[Outbox] = []
    db.after_commit.append(heard.append)
    task_id = scene.acme.tasks[0].id

    async def log_one(session) -> None:  # type: ignore[no-untyped-def]
        task = await session.get(Task, task_id)
        await append_event(session, type=EventType.TASK_UPDATED, task=task, actor_id=None)

    async def log_one_then_fail(session) -> None:  # type: ignore[no-untyped-def]
        await log_one(session)
        raise RuntimeError("refused after logging")

    with pytest.raises(RuntimeError):
        await db.write(log_one_then_fail)
    assert heard == []
    await db.write(log_one)
    assert len(heard) == 1 and [e.type for e in heard[0].events] == ["task_updated"]
    assert heard[0].identity_changes == []
    await db.write(lambda session: session.get(Task, task_id))  # a write that logs nothing
    assert len(heard) == 1
