"""The board and its actions through the real app: HTML, htmx answers, refusals, tenancy."""

from __future__ import annotations

import re

import pytest
from quart import Quart

from app.db import Database
from app.tasks.lifecycle import Action
from tests.conftest import CSRF
from tests.factories import Scene, act, events_of, fetch_task, snapshot

HX = {"HX-Request": "true"}


def board_url(scene: Scene, query: str = "") -> str:
    return f"/o/acme/sprints/{scene.acme.sprint.id}{query}"


def attrs(html: str, task_id: int) -> dict[str, str]:
    """The data-* attributes of one card's root element."""
    match = re.search(rf'<article id="task-{task_id}"([^>]*)>', html)
    assert match, f"card {task_id} missing"
    return dict(re.findall(r'data-([\w-]+)="([^"]*)"', match.group(1)))


def card_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<article id="task-(\d+)"', html)]


def showing(html: str) -> tuple[int, int]:
    """The "Showing X of Y" numbers."""
    match = re.search(r'id="showing" data-shown="(\d+)" data-total="(\d+)"', html)
    assert match, "no 'Showing X of Y'"
    return int(match.group(1)), int(match.group(2))


def groups(html: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r'data-group="([^"]+)" data-count="(\d+)"', html)}


async def post_action(
    client,
    scene: Scene,
    task_id: int,
    action: str,
    *,
    htmx: bool = False,
    referer: str | None = None,
    csrf: str | None = CSRF,
):
    headers = {**(HX if htmx else {})}
    if referer:
        headers["HX-Current-URL" if htmx else "Referer"] = "http://localhost" + referer
    form = {"csrf_token": csrf} if csrf else {}
    return await client.post(f"/o/acme/tasks/{task_id}/{action}", form=form, headers=headers)


async def test_signed_out_visitors_go_to_sign_in(client, scene: Scene):
    response = await client.get(board_url(scene))
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


async def test_home_redirects_to_the_active_sprint(sign_in_as, scene: Scene):
    client = await sign_in_as(scene.bob)
    response = await client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(board_url(scene))


async def test_board_carries_every_dom_hook(sign_in_as, scene: Scene):
    client = await sign_in_as(scene.bob)
    response = await client.get(board_url(scene))
    html = await response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'data-user-id="{scene.bob.id}"' in html
    header = re.search(r'<header id="sprint-header"([^>]*)>', html)
    assert header
    facts = dict(re.findall(r'data-([\w-]+)="([^"]*)"', header.group(1)))
    assert facts == {
        "progress": "0",
        "done": "0",
        "total": "6",
        "days-remaining": "5",
        "stories": "2",
        "count-available": "6",
        "count-owned": "0",
        "count-inprogress": "0",
        "count-completed": "0",
        "owner-counts": "",
    }
    task = scene.acme.tasks[0]
    assert attrs(html, task.id) == {
        "task-id": str(task.id),
        "status": "available",
        "owner-id": "",
        "owner": "",
        "story-id": str(task.story_id),
        "version": "1",
        "sort": f"{1:06d}-{task.story_id:09d}-{task.id:012d}",
    }
    assert 'data-action="take"' in html
    assert re.search(r'id="toasts"[^>]*role="status"[^>]*aria-live="polite"', html)
    assert re.search(r'data-event-id="\d+"', html)
    assert groups(html) == {str(s.id): 3 for s in scene.acme.stories}
    assert showing(html) == (6, 6)


async def test_board_groups_by_status_with_counts(db: Database, sign_in_as, scene: Scene):
    await act(db, scene.acme, scene.acme.tasks[0], Action.TAKE, scene.bob)
    await act(db, scene.acme, scene.acme.tasks[1], Action.TAKE, scene.carol)
    await act(db, scene.acme, scene.acme.tasks[1], Action.COMPLETE, scene.carol)
    client = await sign_in_as(scene.bob)
    html = await (await client.get(board_url(scene, "?group=status"))).get_data(as_text=True)
    assert groups(html) == {"available": 4, "owned": 1, "inprogress": 0, "completed": 1}
    header = re.search(r'data-progress="(\d+)" data-done="(\d+)" data-total="(\d+)"', html)
    assert header and header.groups() == ("17", "1", "6")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?status=available", {0, 3, 4, 5}),
        ("?status=owned&status=completed", {1, 2}),
        ("?mine=1", {1}),
        ("?available=1", {0, 3, 4, 5}),
        ("?mine=1&status=completed", set()),
        ("?status=bogus", {0, 1, 2, 3, 4, 5}),
    ],
)
async def test_filters_narrow_the_cards_and_say_how_many(
    db: Database, sign_in_as, scene: Scene, query: str, expected: set[int]
):
    tasks = scene.acme.tasks
    await act(db, scene.acme, tasks[1], Action.TAKE, scene.bob)
    await act(db, scene.acme, tasks[2], Action.TAKE, scene.carol)
    await act(db, scene.acme, tasks[2], Action.COMPLETE, scene.carol)
    client = await sign_in_as(scene.bob)
    html = await (await client.get(board_url(scene, query))).get_data(as_text=True)
    assert set(card_ids(html)) == {tasks[i].id for i in expected}
    assert showing(html) == (len(expected), 6)
    assert sum(groups(html).values()) == len(expected)
    # Per-filter counts are over the whole sprint, whatever is shown.
    assert re.search(r'data-filter="mine".*?data-count="1"', html, re.S)
    assert re.search(r'data-value="available".*?data-count="4"', html, re.S)


async def test_take_without_javascript_redirects_back_to_the_same_view(
    db: Database, sign_in_as, scene: Scene
):
    client = await sign_in_as(scene.bob)
    task = scene.acme.tasks[0]
    view = board_url(scene, "?group=status&mine=1")
    response = await post_action(client, scene, task.id, "take", referer=view)
    assert response.status_code == 303
    assert response.headers["Location"] == view
    page = await (await client.get(view)).get_data(as_text=True)
    assert "You took “acme task 1.1”; it is now in Owned." in page
    assert attrs(page, task.id)["status"] == "owned"
    assert (await fetch_task(db, task.id)).owner_id == scene.bob.id


@pytest.mark.parametrize(
    ("setup", "action", "status"),
    [
        ((), "take", "owned"),
        (("take",), "start", "inprogress"),
        (("take", "start"), "pause", "owned"),
        (("take",), "complete", "completed"),
        (("take", "start"), "release", "available"),
    ],
)
async def test_each_action_with_htmx_answers_fresh_fragments(
    db: Database, sign_in_as, scene: Scene, setup: tuple[str, ...], action: str, status: str
):
    client = await sign_in_as(scene.bob)
    task = scene.acme.tasks[0]
    for step in setup:
        await act(db, scene.acme, task, Action(step), scene.bob)
    response = await post_action(
        client, scene, task.id, action, htmx=True, referer=board_url(scene)
    )
    html = await response.get_data(as_text=True)
    assert response.status_code == 200
    assert attrs(html, task.id)["status"] == status
    # The card (placed by the page's script) and the counts; never whole groups; the
    # header only when a figure of it moved.
    assert html.count("<template data-live-card data-own") == 1
    assert "<template data-live-counts" in html and 'id="group-' not in html
    header = 'id="sprint-header" class="sprint-header" hx-swap-oob="true"' in html
    assert header == (status == "completed")
    assert (await fetch_task(db, task.id)).status == status


@pytest.mark.parametrize("action", ["take", "start", "pause", "complete"])
async def test_each_action_without_htmx_redirects(
    db: Database, sign_in_as, scene: Scene, action: str
):
    client = await sign_in_as(scene.bob)
    task = scene.acme.tasks[0]
    setup = {"take": (), "start": ("take",), "pause": ("take", "start"), "complete": ("take",)}
    for step in setup[action]:
        await act(db, scene.acme, task, Action(step), scene.bob)
    response = await post_action(client, scene, task.id, action)
    assert response.status_code == 303
    assert response.headers["Location"] == board_url(scene)


async def test_status_grouping_moves_the_card_between_columns(
    db: Database, sign_in_as, scene: Scene
):
    client = await sign_in_as(scene.bob)
    task = scene.acme.tasks[0]
    response = await post_action(
        client, scene, task.id, "take", htmx=True, referer=board_url(scene, "?group=status")
    )
    html = await response.get_data(as_text=True)
    # The card, for the page's script to move to its column, and the counts it reads.
    assert attrs(html, task.id)["status"] == "owned" and 'id="group-' not in html
    counts = dict(re.findall(r'data-count-(\w+)="(\d+)"', html))
    assert counts == {"available": "5", "owned": "1", "inprogress": "0", "completed": "0"}
    page = await (await client.get(board_url(scene, "?group=status"))).get_data(as_text=True)
    assert groups(page) == {"available": 5, "owned": 1, "inprogress": 0, "completed": 0}


async def test_taking_a_held_task_says_who_holds_it_and_changes_nothing(
    db: Database, sign_in_as, scene: Scene
):
    task = scene.acme.tasks[0]
    await act(db, scene.acme, task, Action.TAKE, scene.carol)
    client = await sign_in_as(scene.bob)
    before = await snapshot(db)

    plain = await post_action(client, scene, task.id, "take", referer=board_url(scene))
    page = await plain.get_data(as_text=True)
    assert plain.status_code == 409
    assert "Carol took “acme task 1.1”" in page
    assert attrs(page, task.id)["owner"] == "Carol"

    htmx = await post_action(client, scene, task.id, "take", htmx=True, referer=board_url(scene))
    fragment = await htmx.get_data(as_text=True)
    assert htmx.status_code == 409
    assert "Carol took" in fragment and 'role="alert"' in fragment
    assert attrs(fragment, task.id)["owner"] == "Carol"
    assert await snapshot(db) == before


@pytest.mark.parametrize(
    ("who", "task_index", "action", "status"),
    [
        ("victor", 0, "take", 403),  # a viewer
        ("bob", 0, "explode", 404),  # not an action
        ("bob", None, "take", 404),  # another organization's task
        ("bob", -1, "take", 404),  # no such task
        ("bob", 0, "start", 409),  # available: take it first
    ],
)
async def test_refused_actions_change_nothing(
    db: Database,
    sign_in_as,
    scene: Scene,
    who: str,
    task_index: int | None,
    action: str,
    status: int,
):
    client = await sign_in_as(scene.people[who])
    if task_index is None:
        task_id = scene.globex.tasks[0].id
    elif task_index == -1:
        task_id = 999_999
    else:
        task_id = scene.acme.tasks[task_index].id
    before = await snapshot(db)
    for htmx in (False, True):
        response = await post_action(
            client, scene, task_id, action, htmx=htmx, referer=board_url(scene)
        )
        assert response.status_code == status
        body = await response.get_data(as_text=True)
        assert re.search(r">[^<>]{10,}\.</(p|h1)>", body)  # a sentence, not a bare code
    assert await snapshot(db) == before


async def test_a_missing_or_wrong_csrf_token_is_refused(db: Database, sign_in_as, scene: Scene):
    client = await sign_in_as(scene.bob)
    before = await snapshot(db)
    for csrf in (None, "forged"):
        response = await post_action(client, scene, scene.acme.tasks[0].id, "take", csrf=csrf)
        assert response.status_code == 403
    assert await snapshot(db) == before


async def test_htmx_sends_the_csrf_token_as_a_header(db: Database, sign_in_as, scene: Scene):
    client = await sign_in_as(scene.bob)
    task = scene.acme.tasks[0]
    response = await client.post(
        f"/o/acme/tasks/{task.id}/take", headers={**HX, "X-CSRF-Token": CSRF}
    )
    assert response.status_code == 200
    assert (await fetch_task(db, task.id)).status == "owned"


async def test_cross_site_posts_are_refused(db: Database, sign_in_as, scene: Scene):
    client = await sign_in_as(scene.bob)
    before = await snapshot(db)
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        response = await client.post(
            f"/o/acme/tasks/{scene.acme.tasks[0].id}/take",
            form={"csrf_token": CSRF},
            headers=headers,
        )
        assert response.status_code == 403
    assert await snapshot(db) == before


@pytest.mark.parametrize(
    "path",
    [
        "/o/globex/sprints/{globex_sprint}",
        "/o/acme/sprints/{globex_sprint}",
        "/o/acme/tasks/{globex_task}",
        "/o/acme/tasks/{globex_task}/edit",
        "/o/acme/tasks/{globex_task}/release",
        "/o/acme/stories/{globex_story}/tasks/new",
        "/o/nowhere/sprints/1",
    ],
)
async def test_another_organizations_pages_are_not_found(sign_in_as, scene: Scene, path: str):
    client = await sign_in_as(scene.bob)
    url = path.format(
        globex_sprint=scene.globex.sprint.id,
        globex_task=scene.globex.tasks[0].id,
        globex_story=scene.globex.stories[0].id,
    )
    assert (await client.get(url)).status_code == 404


async def test_task_page_shows_history_newest_first(db: Database, sign_in_as, scene: Scene):
    task = scene.acme.tasks[0]
    for step in (Action.TAKE, Action.START, Action.COMPLETE):
        await act(db, scene.acme, task, step, scene.bob)
    client = await sign_in_as(scene.carol)
    html = await (await client.get(f"/o/acme/tasks/{task.id}")).get_data(as_text=True)
    shown = [int(i) for i in re.findall(r'<li data-event-id="(\d+)"', html)]
    logged = [e.id for e in await events_of(db, task.id)]
    assert shown == sorted(logged, reverse=True)
    assert "Bob</strong>" in html and 'from <span class="status-word">In progress' in html


async def test_release_without_javascript_asks_first(sign_in_as, db: Database, scene: Scene):
    task = scene.acme.tasks[0]
    await act(db, scene.acme, task, Action.TAKE, scene.bob)
    client = await sign_in_as(scene.bob)
    board = await (await client.get(board_url(scene))).get_data(as_text=True)
    form = re.search(r'<form method="get" action="([^"]+)"\s+data-action="release"', board)
    assert form and form.group(1) == f"/o/acme/tasks/{task.id}/release"
    assert "hx-confirm=" in board
    confirm = await (await client.get(form.group(1))).get_data(as_text=True)
    assert "Give up “acme task 1.1”?" in confirm
    assert (await fetch_task(db, task.id)).status == "owned"


async def test_members_add_and_edit_tasks_from_the_board(db: Database, sign_in_as, scene: Scene):
    story = scene.acme.stories[0]
    client = await sign_in_as(scene.bob)
    form_page = await client.get(f"/o/acme/stories/{story.id}/tasks/new")
    assert form_page.status_code == 200
    created = await client.post(
        f"/o/acme/stories/{story.id}/tasks/new",
        form={
            "csrf_token": CSRF,
            "title": "  Write the docs  ",
            "ac_refs": "AC2",
            "estimate_hours": "3",
        },
    )
    assert created.status_code == 303
    board = await (await client.get(board_url(scene))).get_data(as_text=True)
    assert "Write the docs" in board and showing(board) == (7, 7)
    new_id = max(card_ids(board))
    edited = await client.post(
        f"/o/acme/tasks/{new_id}/edit",
        form={"csrf_token": CSRF, "title": "Write the user docs", "estimate_hours": ""},
    )
    assert edited.status_code == 303
    task = await fetch_task(db, new_id)
    assert (task.title, task.estimate_hours, task.ac_refs) == ("Write the user docs", None, [])
    assert [e.type for e in await events_of(db, new_id)] == ["task_created", "task_updated"]


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"title": "   "}, "needs a title"),
        ({"title": "x", "estimate_hours": "41"}, "from 1 to 40"),
        ({"title": "x", "estimate_hours": "two"}, "whole number"),
        ({"title": "x", "ac_refs": "AC9"}, "has no AC9"),
    ],
)
async def test_bad_task_fields_are_explained_and_change_nothing(
    db: Database, sign_in_as, scene: Scene, fields: dict[str, str], words: str
):
    client = await sign_in_as(scene.bob)
    before = await snapshot(db)
    response = await client.post(
        f"/o/acme/stories/{scene.acme.stories[0].id}/tasks/new", form={"csrf_token": CSRF, **fields}
    )
    assert response.status_code == 422
    assert words in await response.get_data(as_text=True)
    assert await snapshot(db) == before


async def test_viewers_cannot_add_tasks(db: Database, sign_in_as, scene: Scene):
    client = await sign_in_as(scene.victor)
    before = await snapshot(db)
    response = await client.post(
        f"/o/acme/stories/{scene.acme.stories[0].id}/tasks/new",
        form={"csrf_token": CSRF, "title": "sneaky"},
    )
    assert response.status_code == 403
    assert await snapshot(db) == before


async def test_owners_add_and_edit_stories_members_cannot(sign_in_as, scene: Scene):
    sprint = scene.acme.sprint
    member = await sign_in_as(scene.bob)
    refused = await member.post(
        f"/o/acme/sprints/{sprint.id}/stories/new",
        form={"csrf_token": CSRF, "title": "Nope", "points": "2"},
    )
    assert refused.status_code == 403

    owner = await sign_in_as(scene.alice)
    created = await owner.post(
        f"/o/acme/sprints/{sprint.id}/stories/new",
        form={
            "csrf_token": CSRF,
            "title": "Export the board",
            "points": "5",
            "new-1-given": "a board",
            "new-1-when": "I export it",
            "new-1-then": "I get a CSV",
        },
    )
    assert created.status_code == 303
    board = await (await owner.get(board_url(scene))).get_data(as_text=True)
    assert "Export the board" in board and 'data-stories="3"' in board
    story_id = int(re.search(r"group-story-(\d+)", created.headers["Location"]).group(1))
    edited = await owner.post(
        f"/o/acme/stories/{story_id}/edit",
        form={
            "csrf_token": CSRF,
            "title": "Export the board as CSV",
            "points": "3",
            "ac-1-given": "a board",
            "ac-1-when": "I export it",
            "ac-1-then": "I get a CSV",
            "new-1-given": "an empty sprint",
            "new-1-when": "I export",
            "new-1-then": "I get headers",
        },
    )
    assert edited.status_code == 303
    board = await (await owner.get(board_url(scene))).get_data(as_text=True)
    assert "Export the board as CSV" in board and "AC2" in board
    bad = await owner.post(
        f"/o/acme/stories/{story_id}/edit", form={"csrf_token": CSRF, "title": "x", "points": "9"}
    )
    assert bad.status_code == 422


async def test_dev_sign_in_form_signs_in_and_out(app: Quart, scene: Scene):
    client = app.test_client()
    page = await (await client.get("/login")).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    signed_in = await client.post(
        "/login/dev", form={"csrf_token": token, "email": "bob@example.com"}
    )
    assert signed_in.status_code == 303
    assert (await client.get(board_url(scene))).status_code == 200
    board = await (await client.get(board_url(scene))).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', board).group(1)
    assert (await client.post("/logout", form={"csrf_token": token})).status_code == 303
    assert (await client.get(board_url(scene))).status_code == 302


async def test_dev_sign_in_refuses_strangers(app: Quart, scene: Scene):
    client = app.test_client()
    page = await (await client.get("/login")).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = await client.post(
        "/login/dev", form={"csrf_token": token, "email": "mallory@example.com"}
    )
    assert response.status_code == 303
    assert "/login" in response.headers["Location"]
    assert (await client.get(board_url(scene))).status_code == 302


async def test_owners_plan_and_advance_sprints_one_step_at_a_time(sign_in_as, scene: Scene):
    owner = await sign_in_as(scene.alice)
    created = await owner.post(
        "/o/acme/sprints",
        form={
            "csrf_token": CSRF,
            "name": "Next sprint",
            # The day the scene's active sprint starts: the list still tells them apart.
            "start_date": scene.acme.sprint.start_date.isoformat(),
            "end_date": scene.acme.sprint.end_date.isoformat(),
        },
    )
    assert created.status_code == 303
    page = await (await owner.get("/o/acme/sprints")).get_data(as_text=True)
    # Newest first: on the same start date, the one planned last.
    new_id = int(re.findall(r"/o/acme/sprints/(\d+)/advance", page)[0])
    assert new_id != scene.acme.sprint.id
    # Another sprint is active, so this one cannot become active yet.
    await owner.post(f"/o/acme/sprints/{new_id}/advance", form={"csrf_token": CSRF})
    page = await (await owner.get("/o/acme/sprints")).get_data(as_text=True)
    assert "still active" in page
    member = await sign_in_as(scene.bob)
    assert (
        await member.post(f"/o/acme/sprints/{new_id}/advance", form={"csrf_token": CSRF})
    ).status_code == 403


async def test_a_refusal_to_a_pages_script_is_said_in_its_sentence_region(sign_in_as, scene):
    """A page's script (a button, a key, a drag) whose form has expired (signed in again
    in another tab: a new session, a new token) is told so in the page's flash region,
    not with a whole error page that would show nowhere; nothing changes."""
    bob = await sign_in_as(scene.bob)
    task = scene.acme.tasks[0]
    answer = await bob.post(
        f"/o/acme/tasks/{task.id}/take",
        headers={"HX-Request": "true", "X-CSRF-Token": "from-an-older-session"},
    )
    assert answer.status_code == 403
    said = await answer.get_data(as_text=True)
    assert 'id="flash"' in said and 'hx-swap-oob="true"' in said
    assert "This form has expired" in said and "<html" not in said
