"""The sprint cycle: the backlog, story moves, completing a sprint with carry-over, the
frozen report and velocity. Built step by step through the domain code and the routes,
on the real database; the report's numbers are checked against the contract's
definitions, worked out by hand for the story told here."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict, Forbidden, Invalid
from app.events.types import EventType
from app.models import Role, Sprint, SprintStatus, Story, Task, TaskEvent
from app.tasks.cycle import delete_sprint, edit_sprint
from app.tasks.lifecycle import Action
from app.tasks.report import load_report, load_velocity
from app.tasks.sprints import SprintFields, StartsLater
from tests.conftest import CSRF
from tests.cycle_kit import TODAY, Cycle, build, ids
from tests.factories import token_for

JSON = {"Content-Type": "application/json"}


async def test_the_report_follows_the_contracts_definitions_step_by_step(cycle: Cycle):
    sprint = await cycle.plan("Sprint A")
    after = await cycle.plan("Sprint B", TODAY + dt.timedelta(days=14))
    one = await cycle.story(sprint, "Checkout", 3, 2)  # t1 t2 (+ t6 later)
    two = await cycle.story(sprint, "Search", 5, 1)  # t3
    three = await cycle.story(sprint, "Export", 2, 1)  # t4: moved out after the start
    later = await cycle.story(None, "Invoices", 1, 1)  # t5: moved in after the start
    await cycle.advance(sprint)

    late = await cycle.add_task(one.story, "Checkout 3")  # added; its story was committed
    await cycle.move(later.story, sprint)
    await cycle.move(three.story, None)
    await cycle.done(*one.tasks, *two.tasks, *later.tasks)
    await cycle.act(late, Action.TAKE)  # unfinished, owned by bob
    so_far = await build(cycle, sprint)
    assert not so_far.final
    assert so_far.completed.tasks == ids(*one.tasks, *two.tasks, *later.tasks)
    assert so_far.carried_over.tasks == ()

    await cycle.advance(sprint)  # review
    done = await cycle.complete(sprint, str(after.id))
    assert [t.id for t in done.carried] == [late.id]

    report = await build(cycle, sprint)
    assert report.final
    assert report.committed.tasks == ids(*one.tasks, *two.tasks, *three.tasks)
    assert report.committed.points == 3 + 5 + 2
    assert report.added.tasks == ids(late, *later.tasks)
    assert report.added.points == 1  # "Invoices" came in; "Checkout" was there
    assert report.removed.tasks == ids(*three.tasks)
    assert report.removed.points == 2
    assert report.completed.tasks == ids(*one.tasks, *two.tasks, *later.tasks)
    assert report.completed.points == 5 + 1  # "Checkout" left a task unfinished
    assert report.carried_over.tasks == (late.id,)
    assert report.carried_over.points == 3

    # The carried task went on with its story, status and owner; the done ones stayed.
    moved = await cycle.get(Task, late.id)
    assert (moved.sprint_id, moved.status, moved.owner_id) == (
        after.id,
        "owned",
        cycle.scene.bob.id,
    )
    assert (await cycle.get(Story, one.story.id)).sprint_id == after.id
    assert {(await cycle.get(Task, t.id)).sprint_id for t in one.tasks} == {sprint.id}

    # Stored at completion, and the same as a rebuild from the log …
    stored = await cycle.get(Sprint, sprint.id)
    assert stored.report == report.as_json()
    # … and it never moves: later work in the next sprint leaves it as it was.
    await cycle.act(late, Action.START, Action.COMPLETE)
    await cycle.move(three.story, after)
    async with cycle.db.read() as s:
        again = await load_report(s, await s.get(Sprint, sprint.id), "UTC")
    assert again == report


@pytest.mark.parametrize("destination", ["sprint", "new", "backlog"])
async def test_completing_carries_the_unfinished_work_where_asked(cycle: Cycle, destination: str):
    sprint = await cycle.plan("Sprint 7 — Payments", TODAY - dt.timedelta(days=13))
    story = await cycle.story(sprint, "Refunds", 3, 3)
    whole = await cycle.story(sprint, "Receipts", 2, 1)
    next_one = await cycle.plan("Sprint 8", TODAY + dt.timedelta(days=1))
    await cycle.advance(sprint)
    await cycle.done(story.tasks[0], *whole.tasks)
    await cycle.act(story.tasks[1], Action.TAKE, Action.START)
    await cycle.advance(sprint)
    carry = {"sprint": str(next_one.id), "new": "new", "backlog": "backlog"}[destination]
    done = await cycle.complete(sprint, carry)

    if destination == "new":
        assert done.carried_to.name == "Sprint 8"  # the next number
        assert done.carried_to.start_date == sprint.end_date + dt.timedelta(days=1)
        assert done.carried_to.end_date - done.carried_to.start_date == (
            sprint.end_date - sprint.start_date
        )
        assert done.carried_to.status == SprintStatus.PLANNING.value
    expected = {
        "sprint": next_one.id,
        "new": done.carried_to and done.carried_to.id,
        "backlog": None,
    }[destination]
    assert ids(*done.carried) == ids(*story.tasks[1:])
    for task in story.tasks[1:]:
        assert (await cycle.get(Task, task.id)).sprint_id == expected
    assert (await cycle.get(Task, story.tasks[1].id)).status == "inprogress"
    assert (await cycle.get(Story, story.story.id)).sprint_id == expected
    assert (await cycle.get(Story, whole.story.id)).sprint_id == sprint.id  # all done: stays
    assert (await cycle.get(Task, story.tasks[0].id)).sprint_id == sprint.id

    async with cycle.db.read() as s:
        event = await s.scalar(
            select(TaskEvent).where(TaskEvent.type == EventType.SPRINT_COMPLETED)
        )
    assert (event.sprint_id, event.to_sprint_id) == (sprint.id, expected)
    assert sorted(event.task_ids) == list(ids(*story.tasks[1:]))


async def test_a_completed_sprint_is_a_record(cycle: Cycle, sign_in_as: Any):
    sprint = await cycle.plan("Sprint Z")
    story = await cycle.story(sprint, "Docs", 2, 2)
    await cycle.advance(sprint)
    await cycle.done(story.tasks[0])
    await cycle.advance(sprint)
    await cycle.complete(sprint, "backlog")

    with pytest.raises(Conflict, match="completed"):
        await cycle.act(story.tasks[0], Action.TAKE)
    with pytest.raises(Conflict, match="already completed"):
        await cycle.complete(sprint, "backlog")
    with pytest.raises(Conflict):
        await cycle.write(
            lambda s: edit_sprint(
                s,
                org_id=cycle.org_id,
                sprint_id=sprint.id,
                fields=SprintFields("Renamed", "", TODAY.isoformat(), TODAY.isoformat()),
                actor=cycle.scene.alice,
                role=Role.OWNER,
            )
        )
    bob = await sign_in_as(cycle.scene.bob)
    page = await bob.get(f"/o/acme/sprints/{sprint.id}")
    html = await page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'data-closed="true"' in html and "This sprint is completed" in html
    assert "data-action=" not in html  # no buttons on a record
    refused = await bob.post(
        f"/o/acme/tasks/{story.tasks[0].id}/take",
        form={"csrf_token": CSRF},
        headers={"HX-Request": "true"},
    )
    assert refused.status_code == 409


async def test_only_review_completes_and_only_through_complete(cycle: Cycle):
    sprint = await cycle.plan("Sprint Y")
    with pytest.raises(Conflict, match="from review"):
        await cycle.complete(sprint, "backlog")
    await cycle.advance(sprint)
    await cycle.advance(sprint)
    with pytest.raises(Conflict, match="completion page"):
        await cycle.advance(sprint)  # review → completed is not a plain step
    with pytest.raises(Invalid):
        await _carry_nowhere(cycle, sprint)


async def _carry_nowhere(cycle: Cycle, sprint: Sprint) -> None:
    await cycle.story(sprint, "Left over", 1, 1)  # something to carry
    await cycle.complete(sprint, "somewhere")


async def test_starting_a_sprint_before_its_start_date_asks_first(cycle: Cycle):
    ahead = await cycle.plan("Sprint Later", TODAY + dt.timedelta(days=10))
    with pytest.raises(StartsLater):
        await cycle.advance(ahead)
    assert (await cycle.get(Sprint, ahead.id)).status == "planning"  # nothing changed
    started = await cycle.advance(ahead, start_today=True)
    assert (started.status, started.start_date) == ("active", TODAY)


async def test_deleting_a_planned_sprint_sends_its_stories_to_the_backlog(cycle: Cycle):
    sprint = await cycle.plan("Sprint Maybe")
    story = await cycle.story(sprint, "Nice to have", 1, 2)
    name, moved = await cycle.write(
        lambda s: delete_sprint(
            s, org_id=cycle.org_id, sprint_id=sprint.id, actor=cycle.scene.alice, role=Role.OWNER
        )
    )
    assert (name, moved) == ("Sprint Maybe", 1)
    assert await cycle.get(Sprint, sprint.id) is None
    assert (await cycle.get(Story, story.story.id)).sprint_id is None
    assert {(await cycle.get(Task, t.id)).sprint_id for t in story.tasks} == {None}
    with pytest.raises(Conflict, match="only a sprint still in planning"):
        await cycle.write(
            lambda s: delete_sprint(
                s,
                org_id=cycle.org_id,
                sprint_id=cycle.scene.acme.sprint.id,
                actor=cycle.scene.alice,
                role=Role.OWNER,
            )
        )


async def test_velocity_equals_the_reports(cycle: Cycle):
    sprints = []
    for n in range(3):
        sprint = await cycle.plan(f"Sprint {n}", TODAY - dt.timedelta(days=1))
        story = await cycle.story(sprint, f"Story {n}", n + 1, n + 1)
        other = await cycle.story(sprint, f"Other {n}", 2, 1)
        await cycle.advance(sprint)
        await cycle.done(*story.tasks)
        await cycle.advance(sprint)
        await cycle.complete(sprint, "backlog")
        sprints.append(sprint)
        del other
    async with cycle.db.read() as s:
        velocity = await load_velocity(s, cycle.org_id, last=2)
        reports = [await load_report(s, await s.get(Sprint, x.id), "UTC") for x in sprints[1:]]
    assert [s.id for s, _ in velocity.sprints] == [x.id for x in sprints[1:]]  # oldest first
    assert [r for _, r in velocity.sprints] == reports
    assert [r.completed.points for r in reports] == [2, 3]
    assert [r.committed.points for r in reports] == [4, 5]
    assert velocity.average_points == 2.5


async def test_members_and_viewers_cannot_run_the_cycle(cycle: Cycle, sign_in_as: Any):
    sprint = await cycle.plan("Sprint Owners")
    story = await cycle.story(None, "Backlog item", 1, 1)
    with pytest.raises(Forbidden):
        await cycle.move(story.story, sprint, role=Role.MEMBER)
    refused = "Only owners of this organization can do that."
    for who in ("bob", "victor"):
        client = await sign_in_as(getattr(cycle.scene, who))
        for path, data, status in (
            (f"/o/acme/stories/{story.story.id}/move", {"sprint_id": str(sprint.id)}, 303),
            (
                f"/o/acme/sprints/{cycle.scene.acme.sprint.id}/complete",
                {"carry_to": "backlog"},
                403,
            ),
            (f"/o/acme/sprints/{sprint.id}/edit", {"name": "Mine now"}, 403),
            (f"/o/acme/sprints/{sprint.id}/delete", {}, 303),
        ):
            answer = await client.post(path, form={"csrf_token": CSRF, **data})
            assert answer.status_code == status, (who, path)
            said = await (
                await client.get(answer.headers["location"]) if status == 303 else answer
            ).get_data(as_text=True)
            assert refused in said, (who, path)  # a plain form is told why, on the page
        page = await client.get("/o/acme/backlog")
        assert page.status_code == 200
    assert (await cycle.get(Story, story.story.id)).sprint_id is None
    assert (await cycle.get(Sprint, sprint.id)).name == "Sprint Owners"


async def test_the_backlog_page_orders_and_moves_stories(cycle: Cycle, sign_in_as: Any):
    first = await cycle.story(None, "First", 1, 1)
    second = await cycle.story(None, "Second", 2, 0)
    third = await cycle.story(None, "Third", 3, 0)
    alice = await sign_in_as(cycle.scene.alice)
    page = await (await alice.get("/o/acme/backlog")).get_data(as_text=True)
    order = re.findall(r'data-backlog-story-id="(\d+)"', page)
    assert order == [str(first.story.id), str(second.story.id), str(third.story.id)]
    # Third before first, as the Up button or a drag sends it.
    moved = await alice.post(
        f"/o/acme/stories/{third.story.id}/move",
        form={"csrf_token": CSRF, "sprint_id": "", "before": str(first.story.id)},
    )
    assert moved.status_code == 303
    page = await (await alice.get("/o/acme/backlog")).get_data(as_text=True)
    order = re.findall(r'data-backlog-story-id="(\d+)"', page)
    assert order == [str(third.story.id), str(first.story.id), str(second.story.id)]
    # Into the active sprint from the backlog, then its board shows it with its task.
    sprint = await cycle.plan("Sprint Now")
    await cycle.advance(sprint)
    moved = await alice.post(
        f"/o/acme/stories/{first.story.id}/move",
        form={"csrf_token": CSRF, "sprint_id": str(sprint.id)},
    )
    assert moved.status_code == 303
    board = await (await alice.get(f"/o/acme/sprints/{sprint.id}")).get_data(as_text=True)
    assert f'id="group-story-{first.story.id}"' in board
    assert f'id="task-{first.tasks[0].id}"' in board
    # A story cannot go into a sprint under review or completed.
    refused = await alice.post(
        f"/o/acme/stories/{second.story.id}/move",
        form={"csrf_token": CSRF, "sprint_id": str(cycle.scene.acme.sprint.id)},
        headers={"HX-Request": "true"},
    )
    assert refused.status_code == 409
    assert (await cycle.get(Story, second.story.id)).sprint_id is None


async def test_the_api_runs_the_cycle(cycle: Cycle, app: Any):
    token = await token_for(cycle.db, cycle.scene.alice)
    member = await token_for(cycle.db, cycle.scene.bob)
    client = app.test_client()

    async def call(method: str, path: str, who: str = token, **kw: Any) -> tuple[int, Any]:
        answer = await client.open(
            path, method=method, headers={"Authorization": f"Bearer {who}"}, **kw
        )
        return answer.status_code, await answer.get_json()

    status, story = await call(
        "POST",
        "/api/v1/stories",
        json={
            "title": "From a script",
            "points": 3,
            "acceptanceCriteria": [{"given": "a", "when": "b", "then": "c"}],
        },
    )
    assert status == 201 and story["sprint_id"] is None
    assert story["acceptance_criteria"][0]["label"] == "AC1"
    status, _ = await call("POST", "/api/v1/stories", who=member, json={"title": "No"})
    assert status == 403
    status, backlog = await call("GET", "/api/v1/backlog")
    assert [s["id"] for s in backlog["stories"]] == [story["id"]]

    sprint = await cycle.plan("Sprint API")
    status, moved = await call(
        "PUT", f"/api/v1/stories/{story['id']}/sprint", json={"sprintId": str(sprint.id)}
    )
    assert status == 200 and moved["sprint_id"] == str(sprint.id)
    await cycle.add_task(await cycle.get(Story, int(story["id"])), "Do it")
    await cycle.advance(sprint)
    await cycle.advance(sprint)
    status, done = await call(
        "POST", f"/api/v1/sprints/{sprint.id}/complete", json={"carryTo": "new"}
    )
    assert status == 200, done
    assert done["sprint"]["status"] == "completed" and len(done["carriedOver"]) == 1
    status, report = await call("GET", f"/api/v1/sprints/{sprint.id}/report")
    assert status == 200 and report["final"] is True
    assert report["committed"] == {"tasks": 1, "points": 3}
    assert report["lists"]["carriedOver"] == done["carriedOver"]
    status, velocity = await call("GET", "/api/v1/velocity?last=1")
    assert status == 200
    assert velocity["sprints"] == [
        {
            "id": str(sprint.id),
            "name": "Sprint API",
            "committedPoints": 3,
            "completedPoints": 0,
            "committedTasks": 1,
            "completedTasks": 0,
        }
    ]
    status, _ = await call("GET", "/api/v1/velocity?last=0")
    assert status == 422


async def test_work_carried_into_a_running_sprint_counts_as_added_there(cycle: Cycle):
    """A sprint completing into one already under way brings its unfinished tasks (and
    their story) in after that sprint's start: added there, in tasks and points."""
    closing = await cycle.plan("Sprint Old", TODAY - dt.timedelta(days=13))
    story = await cycle.story(closing, "Leftovers", 5, 2)
    await cycle.advance(closing)
    await cycle.done(story.tasks[0])
    await cycle.advance(closing)  # review: the next one can start meanwhile
    running = await cycle.plan("Sprint New")
    own = await cycle.story(running, "Fresh", 2, 1)
    await cycle.advance(running)
    await cycle.complete(closing, str(running.id))
    report = await build(cycle, running)
    assert report.committed.tasks == ids(*own.tasks)
    assert report.added.tasks == ids(story.tasks[1])
    assert report.added.points == 5


async def test_a_completed_sprint_takes_no_new_stories_or_tasks(cycle: Cycle, sign_in_as: Any):
    sprint = await cycle.plan("Sprint Shut")
    story = await cycle.story(sprint, "Done deal", 1, 1)
    await cycle.advance(sprint)
    await cycle.done(*story.tasks)
    await cycle.advance(sprint)
    await cycle.complete(sprint, "backlog")
    with pytest.raises(Conflict, match="completed"):
        await cycle.story(sprint, "Too late", 1, 0)
    with pytest.raises(Conflict, match="completed"):
        await cycle.add_task(story.story, "Also too late")
    alice = await sign_in_as(cycle.scene.alice)
    board = await (await alice.get(f"/o/acme/sprints/{sprint.id}")).get_data(as_text=True)
    assert "New story" not in board and "Add task" not in board


async def test_owners_edit_start_and_delete_sprints_from_the_pages(cycle: Cycle, sign_in_as: Any):
    alice = await sign_in_as(cycle.scene.alice)
    later = await cycle.plan("Sprint Later", TODAY + dt.timedelta(days=7))
    # Edit: a bad date range is refused with a sentence and changes nothing.
    bad = await alice.post(
        f"/o/acme/sprints/{later.id}/edit",
        form={
            "csrf_token": CSRF,
            "name": "Renamed",
            "goal": "",
            "start_date": "2026-12-20",
            "end_date": "2026-12-01",
        },
    )
    assert bad.status_code == 422
    assert "must end on or after its start date" in await bad.get_data(as_text=True)
    assert (await cycle.get(Sprint, later.id)).name == "Sprint Later"
    good = await alice.post(
        f"/o/acme/sprints/{later.id}/edit",
        form={
            "csrf_token": CSRF,
            "name": "Sprint Renamed",
            "goal": "Ship",
            "start_date": later.start_date.isoformat(),
            "end_date": later.end_date.isoformat(),
        },
    )
    assert good.status_code == 303
    assert (await cycle.get(Sprint, later.id)).name == "Sprint Renamed"
    async with cycle.db.read() as s:
        event = await s.scalar(select(TaskEvent).where(TaskEvent.type == EventType.SPRINT_UPDATED))
    assert (event.sprint_id, event.fields) == (later.id, "name,goal")
    # Starting it early asks first, then moves its start to today.
    asked = await alice.post(f"/o/acme/sprints/{later.id}/advance", form={"csrf_token": CSRF})
    assert asked.status_code == 200
    assert "Start it today" in await asked.get_data(as_text=True)
    assert (await cycle.get(Sprint, later.id)).status == "planning"
    started = await alice.post(
        f"/o/acme/sprints/{later.id}/advance", form={"csrf_token": CSRF, "start_today": "1"}
    )
    assert started.status_code == 303
    assert (await cycle.get(Sprint, later.id)).start_date == TODAY
    # Delete asks first, and only a planned sprint can go.
    planned = await cycle.plan("Sprint Gone")
    confirm = await alice.get(f"/o/acme/sprints/{planned.id}/delete")
    assert "Delete the sprint" in await confirm.get_data(as_text=True)
    gone = await alice.post(f"/o/acme/sprints/{planned.id}/delete", form={"csrf_token": CSRF})
    assert gone.status_code == 303 and await cycle.get(Sprint, planned.id) is None
    kept = await alice.post(f"/o/acme/sprints/{later.id}/delete", form={"csrf_token": CSRF})
    assert kept.status_code == 303 and await cycle.get(Sprint, later.id) is not None


async def test_work_counts_in_the_sprint_where_it_was_completed(cycle: Cycle):
    """A story moved on from a sprint leaves what was completed there; a task completed
    in the backlog and brought in later is added to the sprint, not completed in it."""
    first = await cycle.plan("Sprint First")
    second = await cycle.plan("Sprint Second", TODAY + dt.timedelta(days=14))
    story = await cycle.story(first, "Half done", 5, 2)
    early = await cycle.story(None, "Done early", 2, 1)
    await cycle.done(*early.tasks)  # completed while in the backlog
    await cycle.advance(first)
    await cycle.done(story.tasks[0])
    await cycle.move(story.story, second)  # takes only the unfinished task
    assert (await cycle.get(Task, story.tasks[0].id)).sprint_id == first.id
    assert (await cycle.get(Task, story.tasks[1].id)).sprint_id == second.id
    await cycle.move(early.story, first)
    await cycle.advance(first)
    await cycle.complete(first, "backlog")
    report = await build(cycle, first)
    assert report.completed.tasks == (story.tasks[0].id,)
    # Its other task left unfinished: the story completes in the sprint that finishes
    # it, not here too (its points would count twice); the early story's task was done
    # elsewhere: none either.
    assert report.completed.points == 0
    assert report.removed.tasks == (story.tasks[1].id,)
    assert report.added.tasks == ids(*early.tasks)
    assert report.carried_over.tasks == ()  # done before it came: neither
    await cycle.advance(second, start_today=True)
    await cycle.done(story.tasks[1])
    await cycle.advance(second)
    await cycle.complete(second, "backlog")
    later = await build(cycle, second)
    assert later.completed.tasks == (story.tasks[1].id,) and later.completed.points == 5


async def test_what_a_completed_sprint_was_stays_as_it_was(cycle: Cycle, sign_in_as: Any):
    """Its stories cannot be edited (page or API), and its dates stay sane to begin with:
    a sprint cannot be planned to run for years, so a next one always fits."""
    sprint = await cycle.plan("Sprint Kept")
    story = await cycle.story(sprint, "Kept", 2, 1)
    await cycle.advance(sprint)
    await cycle.done(*story.tasks)
    await cycle.advance(sprint)
    await cycle.complete(sprint, "backlog")
    alice = await sign_in_as(cycle.scene.alice)
    edit = await alice.post(
        f"/o/acme/stories/{story.story.id}/edit",
        form={"csrf_token": CSRF, "title": "Rewritten", "points": "8"},
    )
    assert edit.status_code == 409
    assert (await cycle.get(Story, story.story.id)).title == "Kept"
    with pytest.raises(Invalid, match="at most 366 days"):
        await cycle.plan("Forever", TODAY, days=3000)
    with pytest.raises(Invalid, match="between 2000 and 2999"):
        await cycle.plan("Far", dt.date(9999, 1, 1), days=3)


async def test_a_deleted_sprint_stays_named_in_the_log(cycle: Cycle, sign_in_as: Any):
    sprint = await cycle.plan("Sprint Dropped")
    story = await cycle.story(sprint, "Homeless", 1, 1)
    alice = await sign_in_as(cycle.scene.alice)
    await alice.post(f"/o/acme/sprints/{sprint.id}/delete", form={"csrf_token": CSRF})
    async with cycle.db.read() as s:
        events = list(
            await s.scalars(
                select(TaskEvent)
                .where(TaskEvent.type.in_(["story_moved", "sprint_deleted"]))
                .order_by(TaskEvent.id)
            )
        )
    assert [(e.type, e.story_id, e.sprint_id, e.to_sprint_id) for e in events] == [
        ("story_moved", story.story.id, sprint.id, None),
        ("sprint_deleted", None, sprint.id, None),
    ]


async def test_a_task_page_keeps_its_stream_after_its_story_moves(cycle: Cycle, sign_in_as: Any):
    here = await cycle.plan("Sprint Here")
    there = await cycle.plan("Sprint There")
    story = await cycle.story(here, "Mover", 2, 1)
    task = story.tasks[0]
    alice = await sign_in_as(cycle.scene.alice)
    await cycle.move(story.story, there)
    # The page, opened before the move, reconnects with the address it was given.
    again = await alice.head(f"/o/acme/events?sprint={here.id}&task={task.id}&after=0")
    assert again.status_code == 200
    gone = await alice.head(f"/o/acme/events?sprint={here.id}&task=999999&after=0")
    assert gone.status_code == 404


async def test_a_sprint_completed_by_an_earlier_release_can_be_closed_properly(
    cycle: Cycle, sign_in_as: Any
):
    """Before carry-over, "completed" was one more step: unfinished work stayed inside,
    with no report. Completing it again carries that work on and freezes its report."""
    sprint = await cycle.plan("Sprint Old Ways")
    story = await cycle.story(sprint, "Stuck", 3, 2)
    await cycle.advance(sprint)
    await cycle.done(story.tasks[0])

    async def the_old_way(s: AsyncSession) -> None:
        row = await s.get(Sprint, sprint.id)
        assert row is not None
        row.status = "completed"

    await cycle.write(the_old_way)
    alice = await sign_in_as(cycle.scene.alice)
    page = await (await alice.get("/o/acme/sprints")).get_data(as_text=True)
    assert "Carry on unfinished work" in page
    done = await cycle.complete(sprint, "backlog")
    assert [t.id for t in done.carried] == [story.tasks[1].id]
    stored = await cycle.get(Sprint, sprint.id)
    assert stored.report["final"] and stored.report["lists"]["carriedOver"] == [
        str(story.tasks[1].id)
    ]
    with pytest.raises(Conflict, match="already completed"):
        await cycle.complete(sprint, "backlog")


async def test_a_story_whose_work_there_is_done_stays(cycle: Cycle):
    """Moving it would take nothing and leave an empty shell elsewhere: refused. A planned
    sprint being deleted takes all its work to the backlog, completed tasks included."""
    sprint = await cycle.plan("Sprint Busy")
    story = await cycle.story(sprint, "Finished", 2, 1)
    await cycle.advance(sprint)
    await cycle.done(*story.tasks)
    with pytest.raises(Conflict, match="is done"):
        await cycle.move(story.story, None)
    planned = await cycle.plan("Sprint Planned", TODAY + dt.timedelta(days=14))
    early = await cycle.story(planned, "Done early", 1, 2)
    await cycle.done(early.tasks[0])  # (work can be done before a sprint starts)
    await cycle.write(
        lambda s: delete_sprint(
            s, org_id=cycle.org_id, sprint_id=planned.id, actor=cycle.scene.alice, role=Role.OWNER
        )
    )
    assert {(await cycle.get(Task, t.id)).sprint_id for t in early.tasks} == {None}
    async with cycle.db.read() as s:
        moved = await s.scalar(select(TaskEvent).where(TaskEvent.type == EventType.STORY_MOVED))
    assert sorted(moved.task_ids) == list(ids(*early.tasks)) and moved.done_count == 1
