"""Presence as people see it, in Chromium: each sees the others and never themselves, a
card shows who is on its task's page, a closed tab leaves, a crowd folds into "and N
others" with the whole list on focus.

Demo data: "Accept invitations on first sign-in" is available.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from app.auth.accounts import create_token
from app.models import Membership, Role
from tests.browser_kit import Others, axe_violations, expect_live, live_board, new_context, sign_in
from tests.factories import make_user
from tests.server import Server

pytestmark = pytest.mark.browser

TASK = "Accept invitations on first sign-in"
LEAVE_MS = 5_000


def person(page: Page, user_id: int, task_id: int | None = None) -> object:
    viewing = f"[data-viewing-task='{task_id}']" if task_id else ""
    return page.locator(f"#presence [data-presence-user-id='{user_id}']{viewing}")


@pytest.mark.both_databases
async def test_two_people_see_each_other_and_a_card_shows_its_viewers(
    demo_server: Server, browser: Browser, others: Others
):
    alice_id = (await others.user("alice@example.com")).id
    bob_id = (await others.user("bob@example.com")).id
    task_id = await others.task_id(TASK)
    alice = await live_board(browser, demo_server, "alice@example.com")
    bob = await live_board(browser, demo_server, "bob@example.com")

    await expect(person(alice, bob_id)).to_have_count(1)
    await expect(person(bob, alice_id)).to_have_count(1)
    # Nobody sees themselves: the shared notice's own entry is dropped, not hidden.
    await expect(person(alice, alice_id)).to_have_count(0)
    await expect(person(bob, bob_id)).to_have_count(0)

    # Bob opens the task's page in a second tab: Alice's card shows him, once.
    task_tab = await bob.context.new_page()
    await task_tab.goto(f"{demo_server.url}/o/acme/tasks/{task_id}")
    await expect_live(task_tab)
    viewers = alice.locator(f"#task-{task_id} .card-viewers [data-presence-user-id='{bob_id}']")
    await expect(viewers).to_have_count(1)
    await expect(viewers).to_have_attribute("title", "Bob Baker is on this task's page")
    await expect(person(alice, bob_id, task_id)).to_contain_text(f"on #{task_id}")
    await expect(alice.locator("#presence .presence-person")).to_have_count(1)  # once, 2 tabs
    # The task page shows who else is looking, too.
    await expect(person(task_tab, alice_id)).to_have_count(1)

    # A change re-renders the card for everyone; its viewers are painted again.
    await others.take("carol@example.com", task_id)
    await expect(alice.locator(f"#task-{task_id}")).to_have_attribute("data-status", "owned")
    await expect(viewers).to_have_count(1)

    # Bob closes the task's tab: he is back on the board only, within the bound.
    await task_tab.close()
    await expect(viewers).to_have_count(0, timeout=LEAVE_MS)
    await expect(person(alice, bob_id)).to_have_count(1)
    await expect(person(alice, bob_id)).not_to_have_attribute("data-viewing-task", str(task_id))
    # ... and closes the board: gone.
    await bob.context.close()
    await expect(person(alice, bob_id)).to_have_count(0, timeout=LEAVE_MS)
    await expect(alice.locator("#presence .presence-alone")).to_be_visible()


@pytest.fixture
async def crowd(demo_server: Server, others: Others) -> AsyncIterator[list[int]]:
    """Eight more members of acme, each with a board stream open (as a browser would)."""
    org_id = await others.org_id("acme")

    async def build(session):  # type: ignore[no-untyped-def]
        users = [await make_user(session, f"guest{i}") for i in range(8)]
        for user in users:
            session.add(Membership(org_id=org_id, user_id=user.id, role=Role.MEMBER.value))
        return [(user.id, await create_token(session, user=user, name="crowd")) for user in users]

    made = await others.db.write(build)
    sprint = (await others.task(TASK)).story.sprint_id
    async with httpx.AsyncClient(base_url=demo_server.url, timeout=30) as http:
        streams = [
            http.stream(
                "GET",
                f"/o/acme/events?sprint={sprint}",
                headers={"Authorization": f"Bearer {token}"},
            )
            for _, token in made
        ]
        for stream in streams:
            await stream.__aenter__()
        try:
            yield [user_id for user_id, _ in made]
        finally:
            await asyncio.gather(*(s.__aexit__(None, None, None) for s in streams))


async def test_a_crowd_folds_into_and_n_others_with_the_full_list_on_focus(
    demo_server: Server, browser: Browser, crowd: list[int]
):
    alice = await live_board(browser, demo_server, "alice@example.com")
    row = alice.locator("#presence")
    await expect(row.locator(".presence-person")).to_have_count(len(crowd))
    more = row.locator(".presence-more")
    await expect(more).to_have_text(f"and {len(crowd) - 5} others")
    await expect(row.locator(".presence-person:visible")).to_have_count(5)
    await more.focus()
    await expect(row.locator(".presence-person:visible")).to_have_count(len(crowd))
    assert await axe_violations(alice, "#presence") == []


async def test_without_javascript_the_board_shows_who_was_there(
    demo_server: Server, browser: Browser, others: Others
):
    bob_id = (await others.user("bob@example.com")).id
    bob = await live_board(browser, demo_server, "bob@example.com")
    assert bob  # his board's stream is open
    page = await sign_in(await new_context(browser, js=False), demo_server, "alice@example.com")
    await expect(person(page, bob_id)).to_have_count(1)
    await expect(page.locator("#presence [data-presence-user-id]")).to_have_count(1)
