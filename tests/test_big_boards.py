"""Big boards, on the real app and database: `demo --big N`, cards rendered once per
version and kept, pages that leave a card's buttons to the browser's script (and pages
that do not), answers and event messages that carry only what changed."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import func, select, update

from app.db import Database
from app.demo import load_demo
from app.live.render import moves_header
from app.models import Membership, Organization, Sprint, Story, Task, TaskEvent, User
from app.tasks.lifecycle import Action
from app.web import SCRIPT_COOKIE
from tests.conftest import CSRF
from tests.factories import Scene, act
from tests.test_cli import sprintboard

HX = {"HX-Request": "true"}


def board_url(scene: Scene, query: str = "") -> str:
    return f"/o/acme/sprints/{scene.acme.sprint.id}{query}"


def cards_in(html: str) -> list[str]:
    return re.findall(r"<article .*?</article>", html, re.S)


def renderer(app):  # type: ignore[no-untyped-def]
    return app.extensions["live"].renderer


# --- demo --big ----------------------------------------------------------------------------


async def test_demo_big_adds_bigco_with_a_sprint_of_n_tasks_in_every_status(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'big.db'}"
    assert sprintboard(url, "db", "upgrade").returncode == 0
    made = sprintboard(url, "demo", "--big", "45")
    assert made.returncode == 0, made.stderr
    assert "bigco: creating people, a sprint, 20 stories and 45 tasks…" in made.stderr
    assert "20/20 stories" in made.stderr  # (progress, for the long ones)
    again = sprintboard(url, "demo", "--big", "45")
    assert again.returncode == 0 and "bigco: already there" in again.stderr
    refused = sprintboard(url, "demo", "--big", "0")
    assert refused.returncode == 2 and "Invalid value for '--big'" in refused.stderr

    db = Database(url)
    try:
        async with db.read() as s:
            org = await s.scalar(select(Organization).where(Organization.slug == "bigco"))
            assert org is not None
            roles = {
                email: role
                for email, role in await s.execute(
                    select(User.email, Membership.role)
                    .join(Membership, Membership.user_id == User.id)
                    .where(Membership.org_id == org.id)
                )
            }
            assert roles == {
                "olive@example.com": "owner",
                "mia@example.com": "member",
                "max@example.com": "member",
            }
            (sprint,) = await s.scalars(select(Sprint).where(Sprint.org_id == org.id))
            assert sprint.status == "active"
            stories = await s.scalar(select(func.count(Story.id)).where(Story.org_id == org.id))
            assert stories == 20
            statuses = dict(
                (
                    await s.execute(
                        select(Task.status, func.count(Task.id))
                        .where(Task.sprint_id == sprint.id)
                        .group_by(Task.status)
                    )
                ).all()
            )
            assert set(statuses) == {"available", "owned", "inprogress", "completed"}
            assert sum(statuses.values()) == 45
            # Reached through the real life cycle: every task has its history.
            logged = await s.scalar(
                select(func.count(func.distinct(TaskEvent.task_id))).where(
                    TaskEvent.org_id == org.id, TaskEvent.task_id.is_not(None)
                )
            )
            assert logged == 45
    finally:
        await db.close()


# --- the page: cards kept, buttons left to the script ----------------------------------------


async def test_a_scripted_page_leaves_card_buttons_to_the_script_and_one_without_has_them(
    sign_in_as, scene: Scene
):
    client = await sign_in_as(scene.bob)
    plain = await (await client.get(board_url(scene))).get_data(as_text=True)
    cards = cards_in(plain)
    assert cards and all('data-controls="later"' not in card for card in cards)
    assert all("<form" in card for card in cards)  # every action, without JavaScript
    assert f'name="csrf_token" value="{CSRF}"' in plain and "<!--csrf-->" not in plain

    client.set_cookie("localhost", SCRIPT_COOKIE, "1")
    lean = await (await client.get(board_url(scene))).get_data(as_text=True)
    cards = cards_in(lean)
    assert cards and all('data-controls="later"' in card for card in cards)
    assert all("<form" not in card for card in cards)
    # The buttons of each status, for the script to copy into a card.
    for status in ("available", "owned", "inprogress", "completed"):
        assert f'<template data-card-controls="{status}">' in lean
    # Opened with scripting off, such a page goes where the cookie is forgotten.
    assert 'http-equiv="refresh"' in lean and "/no-script?next=" in lean
    assert sum(map(len, cards)) < 0.6 * sum(map(len, cards_in(plain)))


async def test_no_script_forgets_the_cookie_and_returns_to_a_page_of_this_site(
    sign_in_as, scene: Scene
):
    client = await sign_in_as(scene.bob)
    client.set_cookie("localhost", SCRIPT_COOKIE, "1")
    back = await client.get("/no-script?next=" + board_url(scene, "?group=status"))
    assert back.status_code == 303
    assert back.headers["Location"] == board_url(scene, "?group=status")
    assert f"{SCRIPT_COOKIE}=;" in back.headers["Set-Cookie"]
    page = await (await client.get(board_url(scene))).get_data(as_text=True)
    assert all("<form" in card for card in cards_in(page))
    elsewhere = await client.get("/no-script?next=//evil.example/")
    assert elsewhere.headers["Location"] == "/"


async def test_cards_are_rendered_once_per_version_and_again_when_what_they_show_changes(
    app, db: Database, sign_in_as, scene: Scene
):
    client = await sign_in_as(scene.bob)
    client.set_cookie("localhost", SCRIPT_COOKIE, "1")
    cards = renderer(app).cards
    await client.get(board_url(scene))
    rendered = cards.rendered
    assert rendered >= len(scene.acme.tasks)
    await client.get(board_url(scene, "?group=status"))  # another grouping: the same cards
    assert cards.rendered == rendered

    task = scene.acme.tasks[0]
    await act(db, scene.acme, task, Action.TAKE, scene.bob)
    page = await (await client.get(board_url(scene))).get_data(as_text=True)
    assert cards.rendered == rendered + 1  # the card that changed, and only it
    assert re.search(rf'id="task-{task.id}"[^>]*data-status="owned"', page)

    # Its story renamed (no task's version moves): the story's cards say the new name.
    story = scene.acme.stories[0]
    await db.write(
        lambda s: s.execute(update(Story).where(Story.id == story.id).values(title="Renamed"))
    )
    page = await (await client.get(board_url(scene))).get_data(as_text=True)
    story_cards = [c for c in cards_in(page) if f'data-story-id="{story.id}"' in c]
    assert story_cards and all('<span class="meta-story">Renamed</span>' in c for c in story_cards)


# --- my own action's answer ------------------------------------------------------------------


async def take_with_htmx(client, scene: Scene, task: Task, action: str, query: str = ""):  # type: ignore[no-untyped-def]
    headers = {**HX, "HX-Current-URL": "http://localhost" + board_url(scene, query)}
    response = await client.post(
        f"/o/acme/tasks/{task.id}/{action}", form={"csrf_token": CSRF}, headers=headers
    )
    assert response.status_code == 200
    return await response.get_data(as_text=True)


async def test_my_action_is_answered_with_the_card_and_counts_never_whole_groups(
    db: Database, sign_in_as, scene: Scene
):
    client = await sign_in_as(scene.bob)
    task = scene.acme.tasks[0]
    answer = await take_with_htmx(client, scene, task, "take", "?group=status")
    assert answer.count("data-live-card") == 1 and f'id="task-{task.id}"' in answer
    assert 'data-status="owned"' in answer
    assert "data-live-counts" in answer and 'data-count-owned="' in answer
    assert 'id="group-' not in answer  # no column re-rendered
    assert 'id="sprint-header"' not in answer  # a take moves none of its figures
    assert len(answer) < 4_000

    await act(db, scene.acme, task, Action.START, scene.bob)
    done = await take_with_htmx(client, scene, task, "complete")
    # A completion moves the progress and the burndown: the header comes along.
    assert 'id="sprint-header" class="sprint-header" hx-swap-oob="true"' in done
    assert 'id="burndown"' in done and 'id="group-' not in done


# --- event messages ------------------------------------------------------------------------


async def test_a_take_s_message_is_the_card_and_counts_and_a_complete_s_adds_the_header(
    app, db: Database, scene: Scene
):
    live = app.extensions["live"]
    await act(db, scene.acme, scene.acme.tasks[2], Action.TAKE, scene.bob)
    first = (await live.read_events(scene.acme.org.id, after=0, limit=1000))[-1:]
    (morning,) = await renderer(app).frames(scene.acme.org.id, first)
    assert 'id="sprint-header"' in morning.html  # the day's first: days left may have moved
    task = scene.acme.tasks[1]
    for action in (Action.TAKE, Action.START, Action.COMPLETE):
        await act(db, scene.acme, task, action, scene.bob)
    events = (await live.read_events(scene.acme.org.id, after=0, limit=1000))[-3:]
    take, start, complete = await renderer(app).frames(scene.acme.org.id, events)
    assert [moves_header(e) for e in events] == [False, False, True]
    for frame in (take, start):
        assert "data-live-card" in frame.html and "data-live-counts" in frame.html
        assert "sprint-header" not in frame.html and "burndown" not in frame.html
        assert len(frame.sse) <= 2_000, len(frame.sse)
    assert 'id="sprint-header"' in complete.html and 'id="burndown"' in complete.html
    # The same card as a page shows: no one's form token in it, its buttons left to the page.
    assert "csrf_token" not in take.html and 'data-controls="later"' in take.html


async def test_the_big_demo_loads_beside_the_others_and_each_story_holds_every_status(
    db: Database,
):
    assert await load_demo(db, big=200, progress=lambda _m: None)
    async with db.read() as s:
        slugs = set(await s.scalars(select(Organization.slug)))
        bigco = await s.scalar(select(Organization.id).where(Organization.slug == "bigco"))
        per_story = await s.execute(
            select(Task.story_id, func.count(func.distinct(Task.status)))
            .where(Task.org_id == bigco)
            .group_by(Task.story_id)
        )
        kinds = dict(per_story.all())
    assert {"acme", "globex", "bigco"} <= slugs
    assert len(kinds) == 20 and set(kinds.values()) == {4}, kinds
    assert not await load_demo(db, big=200, progress=lambda _m: None)
