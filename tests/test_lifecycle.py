"""The task life cycle: every transition, allowed and refused, on a real SQLite file."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from app.db import Database
from app.errors import Conflict, Forbidden, NotFound
from app.models import Role, TaskStatus
from app.tasks.lifecycle import Action, action_for_target, actions_from, perform
from tests.factories import Scene, act, events_of, fetch_task, snapshot

AVAILABLE, OWNED, WORKING, DONE = (
    TaskStatus.AVAILABLE,
    TaskStatus.OWNED,
    TaskStatus.INPROGRESS,
    TaskStatus.COMPLETED,
)


async def test_take_makes_the_taker_owner_and_logs_ownership_taken(db: Database, scene: Scene):
    task = scene.acme.tasks[0]
    await act(db, scene.acme, task, Action.TAKE, scene.bob)
    after = await fetch_task(db, task.id)
    assert (after.status, after.owner_id) == ("owned", scene.bob.id)
    assert after.owned_at is not None and after.version == task.version + 1
    event = (await events_of(db, task.id))[-1]
    assert (event.type, event.old_status, event.new_status) == (
        "ownership_taken",
        "available",
        "owned",
    )
    assert (event.actor_id, event.owner_id) == (scene.bob.id, scene.bob.id)


@pytest.mark.parametrize(
    ("path", "expected_status", "event_type"),
    [
        ((Action.TAKE, Action.START), "inprogress", "status_changed"),
        ((Action.TAKE, Action.START, Action.PAUSE), "owned", "status_changed"),
        ((Action.TAKE, Action.COMPLETE), "completed", "status_changed"),
        ((Action.TAKE, Action.START, Action.COMPLETE), "completed", "status_changed"),
        ((Action.TAKE, Action.RELEASE), "available", "ownership_released"),
        ((Action.TAKE, Action.START, Action.RELEASE), "available", "ownership_released"),
    ],
)
async def test_owner_moves_a_task_along_its_life_cycle(
    db: Database, scene: Scene, path: tuple[Action, ...], expected_status: str, event_type: str
):
    task = scene.acme.tasks[1]
    for action in path:
        await act(db, scene.acme, task, action, scene.carol)
    after = await fetch_task(db, task.id)
    events = await events_of(db, task.id)
    assert after.status == expected_status
    assert events[-1].type == event_type
    assert [e.type for e in events[1:]] == [
        {"take": "ownership_taken", "release": "ownership_released"}.get(a.value, "status_changed")
        for a in path
    ]


async def test_complete_keeps_the_owner_and_stamps_completed_at(db: Database, scene: Scene):
    task = scene.acme.tasks[0]
    await act(db, scene.acme, task, Action.TAKE, scene.bob)
    await act(db, scene.acme, task, Action.COMPLETE, scene.bob)
    after = await fetch_task(db, task.id)
    assert after.owner_id == scene.bob.id and after.completed_at is not None


async def test_release_clears_owner_and_estimate(db: Database, scene: Scene):
    task = scene.acme.tasks[0]
    assert task.estimate_hours == 2
    await act(db, scene.acme, task, Action.TAKE, scene.bob)
    await act(db, scene.acme, task, Action.RELEASE, scene.bob)
    after = await fetch_task(db, task.id)
    assert (after.status, after.owner_id, after.owned_at, after.estimate_hours) == (
        "available",
        None,
        None,
        None,
    )
    event = (await events_of(db, task.id))[-1]
    assert event.previous_owner_id == scene.bob.id and event.owner_id is None


async def test_taking_a_held_task_names_the_holder_and_when(db: Database, scene: Scene):
    task = scene.acme.tasks[0]
    await act(db, scene.acme, task, Action.TAKE, scene.bob)
    before = await snapshot(db)
    with pytest.raises(Conflict) as refused:
        await act(db, scene.acme, task, Action.TAKE, scene.carol)
    assert "Bob" in refused.value.message
    assert "just now" in refused.value.message
    assert await snapshot(db) == before


async def test_taking_your_own_task_again_is_a_conflict(db: Database, scene: Scene):
    task = scene.acme.tasks[0]
    await act(db, scene.acme, task, Action.TAKE, scene.bob)
    with pytest.raises(Conflict, match="already hold"):
        await act(db, scene.acme, task, Action.TAKE, scene.bob)


@pytest.mark.parametrize("action", [Action.START, Action.PAUSE, Action.COMPLETE, Action.RELEASE])
async def test_only_the_owner_moves_a_held_task(db: Database, scene: Scene, action: Action):
    task = scene.acme.tasks[0]
    await act(db, scene.acme, task, Action.TAKE, scene.bob)
    if action is Action.PAUSE:
        await act(db, scene.acme, task, Action.START, scene.bob)
    before = await snapshot(db)
    with pytest.raises(Conflict) as refused:
        await act(db, scene.acme, task, action, scene.carol)
    assert "Only Bob" in refused.value.message
    assert await snapshot(db) == before


@pytest.mark.parametrize("action", [Action.START, Action.PAUSE, Action.COMPLETE, Action.RELEASE])
async def test_an_available_task_must_be_taken_first(db: Database, scene: Scene, action: Action):
    before = await snapshot(db)
    with pytest.raises(Conflict, match="take it first"):
        await act(db, scene.acme, scene.acme.tasks[0], action, scene.bob)
    assert await snapshot(db) == before


@pytest.mark.parametrize(
    ("setup", "action", "words"),
    [
        ((Action.TAKE, Action.START), Action.START, "already in progress"),
        ((Action.TAKE,), Action.PAUSE, "not in progress"),
        ((Action.TAKE, Action.COMPLETE), Action.START, "already done"),
        ((Action.TAKE, Action.COMPLETE), Action.PAUSE, "already done"),
        ((Action.TAKE, Action.COMPLETE), Action.COMPLETE, "already done"),
        ((Action.TAKE, Action.COMPLETE), Action.RELEASE, "already done"),
    ],
)
async def test_wrong_status_is_refused_with_the_reason(
    db: Database, scene: Scene, setup: tuple[Action, ...], action: Action, words: str
):
    task = scene.acme.tasks[0]
    for step in setup:
        await act(db, scene.acme, task, step, scene.bob)
    before = await snapshot(db)
    with pytest.raises(Conflict, match=words):
        await act(db, scene.acme, task, action, scene.bob)
    assert await snapshot(db) == before


async def test_taking_a_completed_task_names_who_did_it(db: Database, scene: Scene):
    task = scene.acme.tasks[0]
    await act(db, scene.acme, task, Action.TAKE, scene.bob)
    await act(db, scene.acme, task, Action.COMPLETE, scene.bob)
    with pytest.raises(Conflict, match="Bob"):
        await act(db, scene.acme, task, Action.TAKE, scene.carol)


@pytest.mark.parametrize("action", list(Action))
async def test_viewers_change_nothing(db: Database, scene: Scene, action: Action):
    before = await snapshot(db)
    with pytest.raises(Forbidden):
        await act(db, scene.acme, scene.acme.tasks[0], action, scene.victor, role=Role.VIEWER)
    assert await snapshot(db) == before


async def test_owners_take_tasks_too(db: Database, scene: Scene):
    await act(db, scene.acme, scene.acme.tasks[0], Action.TAKE, scene.alice, role=Role.OWNER)
    assert (await fetch_task(db, scene.acme.tasks[0].id)).owner_id == scene.alice.id


async def test_another_organizations_task_is_not_found(db: Database, scene: Scene):
    foreign = scene.globex.tasks[0]
    before = await snapshot(db)
    with pytest.raises(NotFound):
        await db.write(
            lambda s: perform(
                s,
                org_id=scene.acme.org.id,
                task_id=foreign.id,
                action=Action.TAKE,
                actor=scene.bob,
                role=Role.MEMBER,
            )
        )
    assert await snapshot(db) == before


async def test_event_ids_count_up_per_organization(db: Database, scene: Scene):
    acme_task, globex_task = scene.acme.tasks[0], scene.globex.tasks[0]
    await act(db, scene.acme, acme_task, Action.TAKE, scene.bob)
    await act(db, scene.globex, globex_task, Action.TAKE, scene.dave, role=Role.OWNER)
    await act(db, scene.acme, acme_task, Action.START, scene.bob)
    acme_ids = [e.id for e in await events_of(db, acme_task.id)]
    assert acme_ids == sorted(acme_ids) and len(set(acme_ids)) == len(acme_ids)
    # Two story_created and six task_created events per organization came first.
    assert acme_ids[-2:] == [9, 10]
    assert (await events_of(db, globex_task.id))[-1].id == 9


def test_the_rules_table_matches_the_product():
    assert actions_from(AVAILABLE) == [Action.TAKE]
    assert actions_from(OWNED) == [Action.START, Action.COMPLETE, Action.RELEASE]
    assert actions_from(WORKING) == [Action.PAUSE, Action.COMPLETE, Action.RELEASE]
    assert actions_from(DONE) == [Action.REOPEN]
    assert action_for_target(DONE, OWNED) is Action.REOPEN
    assert action_for_target(OWNED, WORKING) is Action.START
    assert action_for_target(WORKING, OWNED) is Action.PAUSE
    assert action_for_target(AVAILABLE, OWNED) is Action.TAKE
    assert action_for_target(WORKING, AVAILABLE) is Action.RELEASE
    assert action_for_target(DONE, AVAILABLE) is None


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE task SET status = 'owned', owner_id = NULL WHERE id = :id",
        "UPDATE task SET owner_id = :user WHERE id = :id",
        "UPDATE task SET status = 'completed', owner_id = :user WHERE id = :id",
        "UPDATE task SET completed_at = CURRENT_TIMESTAMP WHERE id = :id",
        "UPDATE task SET status = 'lost' WHERE id = :id",
        "UPDATE task SET estimate_hours = 41 WHERE id = :id",
        "UPDATE task SET title = '   ' WHERE id = :id",
    ],
)
async def test_the_database_refuses_impossible_tasks(db: Database, scene: Scene, statement: str):
    task = scene.acme.tasks[0]
    with pytest.raises(IntegrityError):
        await db.write(lambda s: s.execute(text(statement), {"id": task.id, "user": scene.bob.id}))
    assert (await fetch_task(db, task.id)).status == "available"
