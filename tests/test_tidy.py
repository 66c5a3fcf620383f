"""Keeping the board tidy, through the domain code, the pages and the API on the real
database: a task moved to another story, work archived (off boards, counts, charts and
My work; 409 on actions; undo) and restored, a completed task reopened, a held task
freed by an owner with a reason, and My work."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from sqlalchemy import select

from app.errors import Conflict, Forbidden, Invalid
from app.events.serialize import event_json
from app.events.types import EventType
from app.live.render import toast_text
from app.models import Role, Sprint, Story, Task, TaskEvent
from app.tasks import tidying
from app.tasks.burndown import load_burndown
from app.tasks.lifecycle import Action, change_task
from app.tasks.sprints import load_summary
from tests.conftest import CSRF
from tests.cycle_kit import TODAY, Cycle, build, ids
from tests.factories import token_for


async def active(cycle: Cycle) -> Sprint:
    sprint = await cycle.plan("Sprint T", TODAY - dt.timedelta(days=3))
    await cycle.advance(sprint, start_today=False)
    return sprint


async def events(cycle: Cycle, kind: EventType) -> list[TaskEvent]:
    async with cycle.db.read() as s:
        rows = await s.scalars(
            select(TaskEvent)
            .where(TaskEvent.org_id == cycle.org_id, TaskEvent.type == kind)
            .order_by(TaskEvent.id)
        )
        return list(rows)


async def header(cycle: Cycle, sprint: Sprint) -> tuple[int, int, int]:
    """(tasks, done, stories) as the board's header counts them, and the chart's total
    today must agree with the tasks."""
    async with cycle.db.read() as s:
        fresh = await s.get(Sprint, sprint.id)
        summary = await load_summary(s, fresh, TODAY)
        chart = await load_burndown(
            s, fresh, time_zone="UTC", total=summary.total, remaining=summary.total - summary.done
        )
    assert chart.days[3].total == summary.total  # today (day 4): the board's own count
    # Everything here was made today, so undoing today's events from the log leaves
    # nothing for yesterday: each move, archive and restore was read right.
    assert (chart.days[2].total, chart.days[2].remaining) == (0, 0)
    return summary.total, summary.done, summary.stories


async def tidy(cycle: Cycle, fn: Any, *, who: str = "alice", role: Role = Role.OWNER, **kw: Any):
    actor = getattr(cycle.scene, who)
    return await cycle.write(lambda s: fn(s, org_id=cycle.org_id, actor=actor, role=role, **kw))


# ---------------------------------------------------------------- moving a task ---


async def test_a_task_moves_to_another_story_and_sprint(cycle: Cycle, sign_in_as: Any):
    sprint = await active(cycle)
    later = await cycle.plan("Sprint L", TODAY + dt.timedelta(days=20))
    checkout = await cycle.story(sprint, "Checkout", 3, 2)
    search = await cycle.story(sprint, "Search", 2, 1)
    elsewhere = await cycle.story(later, "Export", 1, 1)
    task = checkout.tasks[0]
    await cycle.act(task, Action.TAKE)

    # Within the sprint: its group changes, nothing is counted twice.
    moved, event = await tidy(
        cycle,
        tidying.move_task,
        who="bob",
        role=Role.MEMBER,
        task_id=task.id,
        story_id=search.story.id,
    )
    assert (moved.story_id, moved.sprint_id, moved.owner_id) == (
        search.story.id,
        sprint.id,
        cycle.scene.bob.id,
    )
    assert event is not None
    [logged] = await events(cycle, EventType.TASK_MOVED)
    assert (logged.story_id, logged.to_story_id) == (checkout.story.id, search.story.id)
    assert event_json(logged)["from_story_id"] == str(checkout.story.id)
    assert event_json(logged)["to_story_id"] == str(search.story.id)
    assert await header(cycle, sprint) == (3, 0, 2)
    bob = await sign_in_as(cycle.scene.bob)
    board = await (await bob.get(f"/o/acme/sprints/{sprint.id}")).get_data(as_text=True)
    group = board.split(f'id="group-story-{search.story.id}"')[1].split("</section>")[0]
    assert f'id="task-{task.id}"' in group

    # Into a story of another sprint, through the page: it leaves this sprint's count.
    answer = await bob.post(
        f"/o/acme/tasks/{task.id}/move",
        form={"csrf_token": CSRF, "story_id": str(elsewhere.story.id)},
    )
    assert answer.status_code == 303
    assert (await cycle.get(Task, task.id)).sprint_id == later.id
    assert await header(cycle, sprint) == (2, 0, 2)
    [_first, second] = await events(cycle, EventType.TASK_MOVED)
    assert (second.sprint_id, second.to_sprint_id) == (sprint.id, later.id)

    # A done task stays in the sprint where it was done; a viewer moves nothing.
    await cycle.done(checkout.tasks[1])
    with pytest.raises(Conflict, match="stays in the sprint where it was done"):
        await tidy(
            cycle, tidying.move_task, task_id=checkout.tasks[1].id, story_id=elsewhere.story.id
        )
    with pytest.raises(Forbidden):
        await tidy(
            cycle,
            tidying.move_task,
            who="victor",
            role=Role.VIEWER,
            task_id=search.tasks[0].id,
            story_id=checkout.story.id,
        )
    # Nothing moves into a sprint in review (the factories' sprint is).
    review = await cycle.get(Story, cycle.scene.acme.stories[0].id)
    with pytest.raises(Conflict, match="in planning or under way"):
        await tidy(cycle, tidying.move_task, task_id=search.tasks[0].id, story_id=review.id)
    assert (await cycle.get(Task, search.tasks[0].id)).story_id == search.story.id


# ---------------------------------------------------------------- archiving -------


async def test_an_archived_task_leaves_boards_counts_charts_and_reports(
    cycle: Cycle, sign_in_as: Any
):
    sprint = await active(cycle)
    story = await cycle.story(sprint, "Checkout", 3, 3)
    duplicate, kept, done = story.tasks
    await cycle.done(done)
    await cycle.act(duplicate, Action.TAKE)
    assert await header(cycle, sprint) == (3, 1, 1)

    bob = await sign_in_as(cycle.scene.bob)
    answer = await bob.post(
        f"/o/acme/tasks/{duplicate.id}/archive",
        form={"csrf_token": CSRF},
        headers={"Referer": f"http://localhost/o/acme/tasks/{duplicate.id}"},
    )
    # Back to where it was (its own page would only say "archived"), with the undo.
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/o/acme/sprints/{sprint.id}"
    board = await (await bob.get(answer.headers["location"])).get_data(as_text=True)
    undo = re.search(r'<form method="post" action="([^"]+)" class="inline" data-undo>', board)
    assert undo and undo.group(1) == f"/o/acme/tasks/{duplicate.id}/restore"
    assert f'id="task-{duplicate.id}"' not in board
    assert f'id="task-{kept.id}"' in board
    assert await header(cycle, sprint) == (2, 1, 1)
    assert (await build(cycle, sprint)).removed.tasks == (duplicate.id,)

    # Its page says so, and offers Restore; every action on it is refused with a sentence.
    page = await bob.get(f"/o/acme/tasks/{duplicate.id}")
    html = await page.get_data(as_text=True)
    assert page.status_code == 200 and 'data-archived="true"' in html and "data-restore" in html
    refused = await bob.post(
        f"/o/acme/tasks/{duplicate.id}/complete",
        form={"csrf_token": CSRF},
        headers={"HX-Request": "true"},
    )
    assert refused.status_code == 409
    assert "is archived: restore it first" in await refused.get_data(as_text=True)
    edit = await bob.post(
        f"/o/acme/tasks/{duplicate.id}/edit", form={"csrf_token": CSRF, "title": "Renamed"}
    )
    assert edit.status_code == 409
    mine = await (await bob.get("/o/acme/mine")).get_data(as_text=True)
    assert f'id="task-{duplicate.id}"' not in mine

    # The undo form restores it: back on the board, in the counts, owned as it was.
    answer = await bob.post(undo.group(1), form={"csrf_token": CSRF})
    assert answer.status_code == 303
    restored = await cycle.get(Task, duplicate.id)
    assert restored.archived_at is None and restored.owner_id == cycle.scene.bob.id
    assert await header(cycle, sprint) == (3, 1, 1)
    report = await build(cycle, sprint)
    assert report.removed.tasks == (duplicate.id,) and duplicate.id in report.added.tasks
    assert [e.type for e in await events(cycle, EventType.TASK_RESTORED)] == ["task_restored"]


async def test_a_story_is_archived_with_its_tasks_and_comes_back_with_them(
    cycle: Cycle, sign_in_as: Any
):
    sprint = await active(cycle)
    story = await cycle.story(sprint, "Test sprint story", 2, 3)
    alone, *with_it = story.tasks
    await tidy(cycle, tidying.archive_task, task_id=alone.id)  # on its own, first
    with pytest.raises(Forbidden):
        await tidy(
            cycle, tidying.archive_story, who="bob", role=Role.MEMBER, story_id=story.story.id
        )
    bob = await sign_in_as(cycle.scene.bob)
    answer = await bob.post(f"/o/acme/stories/{story.story.id}/archive", form={"csrf_token": CSRF})
    assert answer.status_code == 403
    assert "Only owners" in await answer.get_data(as_text=True)

    _story, [event] = await tidy(cycle, tidying.archive_story, story_id=story.story.id)
    assert event.type == EventType.STORY_ARCHIVED and event.task_ids == sorted(ids(*with_it))
    assert await header(cycle, sprint) == (0, 0, 0)
    with pytest.raises(Conflict, match="archived"):
        await cycle.add_task(story.story, "One more")

    alice = await sign_in_as(cycle.scene.alice)
    page = await (await alice.get("/o/acme/archive")).get_data(as_text=True)
    # Newest first: the story (with the two that went with it), then the lone task.
    lines = re.findall(r'data-archived-(story|task)-id="(\d+)"', page)
    assert lines == [("story", str(story.story.id)), ("task", str(alone.id))]
    # The lone task cannot come back while its story is archived.
    with pytest.raises(Conflict, match="restore the story"):
        await tidy(cycle, tidying.restore_task, task_id=alone.id)

    answer = await alice.post(
        f"/o/acme/stories/{story.story.id}/restore", form={"csrf_token": CSRF}
    )
    assert answer.status_code == 303
    assert (await cycle.get(Task, alone.id)).archived_at is not None  # not archived with it
    for task in with_it:
        assert (await cycle.get(Task, task.id)).archived_at is None
    assert await header(cycle, sprint) == (2, 0, 1)
    report = await build(cycle, sprint)  # left and came back: removed, then added
    assert report.removed.tasks == ids(*story.tasks)
    assert report.added.tasks == ids(*story.tasks)  # all were made after the start


async def test_a_completed_sprint_keeps_its_record_when_a_story_is_archived(cycle: Cycle):
    sprint = await active(cycle)
    nxt = await cycle.plan("Sprint N", TODAY + dt.timedelta(days=11))
    story = await cycle.story(sprint, "Half done", 3, 2)
    await cycle.done(story.tasks[0])
    await cycle.advance(sprint)
    await cycle.complete(sprint, str(nxt.id))
    before = await build(cycle, sprint)
    with pytest.raises(Conflict, match="is completed"):
        await tidy(cycle, tidying.archive_task, task_id=story.tasks[0].id)
    _story, [event] = await tidy(cycle, tidying.archive_story, story_id=story.story.id)
    assert event.task_ids == [story.tasks[1].id] and event.sprint_id == nxt.id
    assert (await cycle.get(Task, story.tasks[0].id)).archived_at is None
    async with cycle.db.read() as s:
        assert (await s.get(Sprint, sprint.id)).report == before.as_json()


async def test_archived_work_comes_back_where_its_story_went_on(cycle: Cycle, sign_in_as: Any):
    sprint = await active(cycle)
    nxt = await cycle.plan("Sprint N", TODAY + dt.timedelta(days=11))
    goes_on = await cycle.story(sprint, "Goes on", 3, 2)  # one archived, one carried on
    stops = await cycle.story(sprint, "Stops", 2, 2)  # one archived, one done
    await cycle.done(stops.tasks[1])
    for task in (goes_on.tasks[0], stops.tasks[0]):
        await tidy(cycle, tidying.archive_task, task_id=task.id)
    await cycle.advance(sprint)
    await cycle.complete(sprint, str(nxt.id))
    assert (await cycle.get(Story, goes_on.story.id)).sprint_id == nxt.id
    assert (await cycle.get(Story, stops.story.id)).sprint_id == sprint.id  # all done there

    # With its story, in the sprint it went on to.
    task, _event = await tidy(cycle, tidying.restore_task, task_id=goes_on.tasks[0].id)
    assert task.sprint_id == nxt.id
    # Its story stopped in a completed sprint: both go to the backlog, and show there.
    task, _event = await tidy(cycle, tidying.restore_task, task_id=stops.tasks[0].id)
    assert task.sprint_id is None
    assert (await cycle.get(Story, stops.story.id)).sprint_id is None
    assert (await cycle.get(Task, stops.tasks[1].id)).sprint_id == sprint.id  # the record
    alice = await sign_in_as(cycle.scene.alice)
    backlog = await (await alice.get("/o/acme/backlog")).get_data(as_text=True)
    assert f'data-backlog-story-id="{stops.story.id}"' in backlog
    assert f'data-task-id="{stops.tasks[0].id}"' in backlog
    report = await build(cycle, sprint)
    assert report.final and set(report.removed.tasks) == {goes_on.tasks[0].id, stops.tasks[0].id}


# ---------------------------------------------------------------- reopen ----------


async def test_reopen_is_the_owners_or_an_organization_owners(cycle: Cycle, sign_in_as: Any):
    sprint = await active(cycle)
    story = await cycle.story(sprint, "Payments", 3, 2)
    mine, theirs = story.tasks
    await cycle.done(mine, theirs)
    assert await header(cycle, sprint) == (2, 2, 1)

    # Bob's own accidental Done, from the board (the card offers it).
    bob = await sign_in_as(cycle.scene.bob)
    board = await (await bob.get(f"/o/acme/sprints/{sprint.id}")).get_data(as_text=True)
    card = board.split(f'id="task-{mine.id}"')[1].split("</article>")[0]
    assert 'data-action="reopen"' in card and 'aria-keyshortcuts="o"' in card
    assert "<kbd>o</kbd></td><td>Reopen" in board  # the ? list
    answer = await bob.post(f"/o/acme/tasks/{mine.id}/reopen", form={"csrf_token": CSRF})
    assert answer.status_code == 303
    task = await cycle.get(Task, mine.id)
    assert (task.status, task.owner_id, task.completed_at) == ("owned", cycle.scene.bob.id, None)
    assert await header(cycle, sprint) == (2, 1, 1)  # the burndown goes back up
    [event] = [e for e in await events(cycle, EventType.STATUS_CHANGED) if e.task_id == mine.id][
        -1:
    ]
    assert (event.old_status, event.new_status) == ("completed", "owned")

    # Carol (a member) may not reopen Bob's; Alice (an owner) may, and it stays Bob's.
    with pytest.raises(Conflict, match="Only Bob"):
        await cycle.act(theirs, Action.REOPEN, who=cycle.scene.carol)
    await cycle.write(
        lambda s: change_task(
            s, actor=cycle.scene.alice, org=cycle.org_id, task_id=theirs.id, action=Action.REOPEN
        )
    )
    task = await cycle.get(Task, theirs.id)
    assert (task.status, task.owner_id) == ("owned", cycle.scene.bob.id)
    with pytest.raises(Conflict, match="nothing to reopen"):
        await cycle.act(theirs, Action.REOPEN)


# ---------------------------------------------------------------- freeing ---------


async def test_an_owner_frees_a_held_task_with_a_reason(cycle: Cycle, sign_in_as: Any, app: Any):
    sprint = await active(cycle)
    story = await cycle.story(sprint, "Away", 1, 2)
    held, other = story.tasks
    await cycle.act(held, Action.TAKE, Action.START)
    await cycle.act(other, Action.TAKE)

    alice = await sign_in_as(cycle.scene.alice)
    page = await (await alice.get(f"/o/acme/tasks/{held.id}")).get_data(as_text=True)
    assert 'name="reason" required maxlength="200"' in page
    for reason, said in (("", "Say why"), ("x" * 201, "at most 200 characters")):
        answer = await alice.post(
            f"/o/acme/tasks/{held.id}/free", form={"csrf_token": CSRF, "reason": reason}
        )
        assert answer.status_code == 422
        assert said in await answer.get_data(as_text=True)
        assert (await cycle.get(Task, held.id)).owner_id == cycle.scene.bob.id
    carol = await sign_in_as(cycle.scene.carol)
    answer = await carol.post(
        f"/o/acme/tasks/{held.id}/free", form={"csrf_token": CSRF, "reason": "mine now"}
    )
    assert answer.status_code == 403
    assert "Only an organization owner" in await answer.get_data(as_text=True)
    # Another organization's task answers like one that does not exist.
    dave = await sign_in_as(cycle.scene.dave)
    answer = await dave.post(f"/o/globex/tasks/{held.id}/archive", form={"csrf_token": CSRF})
    assert answer.status_code == 404
    assert (await cycle.get(Task, held.id)).archived_at is None

    answer = await alice.post(
        f"/o/acme/tasks/{held.id}/free", form={"csrf_token": CSRF, "reason": "Away this week"}
    )
    assert answer.status_code == 303
    task = await cycle.get(Task, held.id)
    assert (task.status, task.owner_id, task.estimate_hours) == ("available", None, None)
    [event] = [e for e in await events(cycle, EventType.OWNERSHIP_RELEASED) if e.task_id == held.id]
    assert (event.actor_id, event.previous_owner_id, event.reason) == (
        cycle.scene.alice.id,
        cycle.scene.bob.id,
        "Away this week",
    )
    shaped = event_json(event)
    assert shaped["reason"] == "Away this week"
    assert shaped["previous_owner_user_id"] == str(cycle.scene.bob.id)
    async with cycle.db.read() as s:
        event = await s.get(TaskEvent, (cycle.org_id, event.id))
        assert toast_text(event) == "Alice freed “Away 1”: Away this week"
    history = await (await alice.get(f"/o/acme/tasks/{held.id}")).get_data(as_text=True)
    assert "freed it" in history and "Away this week" in history

    # The API: an owner who does not hold it must say why; with a reason it frees.
    token = await token_for(cycle.db, cycle.scene.alice)
    client = app.test_client()
    auth = {"Authorization": f"Bearer {token}"}
    answer = await client.delete(f"/api/v1/tasks/{other.id}/ownership", headers=auth)
    assert answer.status_code == 422
    answer = await client.delete(
        f"/api/v1/tasks/{other.id}/ownership", headers=auth, json={"reason": "Off sick"}
    )
    assert answer.status_code == 200 and (await answer.get_json())["task"]["status"] == "available"
    with pytest.raises(Invalid):
        await cycle.write(
            lambda s: change_task(
                s,
                actor=cycle.scene.alice,
                org=cycle.org_id,
                task_id=held.id,
                action=Action.FREE,
                reason=" ",
            )
        )


# ---------------------------------------------------------------- My work ---------


async def test_my_work_lists_what_i_hold_by_sprint_and_what_i_finished(
    cycle: Cycle, sign_in_as: Any, app: Any
):
    sprint = await active(cycle)
    story = await cycle.story(sprint, "Mine", 2, 4)
    backlog = await cycle.story(None, "Later", 1, 1)
    working, owned, done, archived = story.tasks
    await cycle.act(working, Action.TAKE, Action.START)
    await cycle.act(owned, Action.TAKE)
    await cycle.act(archived, Action.TAKE)
    await cycle.done(done)
    await cycle.act(backlog.tasks[0], Action.TAKE)
    await tidy(cycle, tidying.archive_task, task_id=archived.id)
    # An old completion (eight days ago) is not "lately".
    old = (await cycle.story(sprint, "Old", 1, 1)).tasks[0]
    await cycle.done(old)

    async def age(s: Any) -> None:
        task = await s.get(Task, old.id)
        task.completed_at = task.completed_at - dt.timedelta(days=8)

    await cycle.write(age)

    bob = await sign_in_as(cycle.scene.bob)
    page = await (await bob.get("/o/acme/mine")).get_data(as_text=True)
    places = re.findall(r'data-mine-place="([^"]+)"', page)
    assert places == [f"sprint-{sprint.id}", "backlog"]
    held = page.split('id="mine-lists"')[1].split('id="mine-done-title"')[0]
    assert re.findall(r'data-task-id="(\d+)"', held) == [
        str(working.id),
        str(owned.id),
        str(backlog.tasks[0].id),
    ]
    finished = page.split('id="mine-done-title"')[1]
    assert f'data-task-id="{done.id}"' in finished and f'data-task-id="{old.id}"' not in finished

    token = await token_for(cycle.db, cycle.scene.bob)
    answer = await app.test_client().get(
        "/api/v1/users/me/tasks", headers={"Authorization": f"Bearer {token}"}
    )
    body = await answer.get_json()
    assert [p["sprintId"] for p in body["held"]] == [str(sprint.id), None]
    assert [t["id"] for t in body["held"][0]["tasks"]] == [str(working.id), str(owned.id)]
    assert [t["id"] for t in body["completed"]] == [str(done.id)]
    carol = await sign_in_as(cycle.scene.carol)
    empty = await (await carol.get("/o/acme/mine")).get_data(as_text=True)
    assert "You hold nothing right now" in empty


async def test_the_api_archives_restores_and_moves(cycle: Cycle, app: Any):
    sprint = await active(cycle)
    story = await cycle.story(sprint, "API", 1, 1)
    other = await cycle.story(sprint, "Other", 1, 0)
    task = story.tasks[0]
    client = app.test_client()
    auth = {"Authorization": f"Bearer {await token_for(cycle.db, cycle.scene.bob)}"}
    viewer = {"Authorization": f"Bearer {await token_for(cycle.db, cycle.scene.victor)}"}

    answer = await client.delete(f"/api/v1/tasks/{task.id}", headers=viewer)
    assert answer.status_code == 403
    answer = await client.delete(f"/api/v1/tasks/{task.id}", headers=auth)
    assert answer.status_code == 200 and (await answer.get_json())["archived"] is True
    answer = await client.put(f"/api/v1/tasks/{task.id}/ownership", headers=auth)
    assert answer.status_code == 409
    assert "archived" in (await answer.get_json())["error"]["message"]
    answer = await client.post(f"/api/v1/tasks/{task.id}/restore", headers=auth)
    assert answer.status_code == 200 and (await answer.get_json())["archived"] is False
    answer = await client.put(
        f"/api/v1/tasks/{task.id}/story", headers=auth, json={"storyId": str(other.story.id)}
    )
    assert answer.status_code == 200
    assert (await answer.get_json())["story_id"] == str(other.story.id)
    answer = await client.put(f"/api/v1/tasks/{task.id}/story", headers=auth, json={"storyId": "x"})
    assert answer.status_code == 422
