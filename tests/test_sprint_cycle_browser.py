"""The sprint cycle in a real browser: a story moved from the backlog shows up on an
open board (and leaves the open backlog), and a sprint moved to review, then completed,
turns a teammate's open board read-only, all without a reload."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from tests.browser_kit import Others, expect_live, live_board, mark_page, new_context, sign_in
from tests.server import Server

pytestmark = pytest.mark.browser


async def test_moves_and_completion_reach_open_boards_live(
    demo_server: Server, browser: Browser, others: Others
):
    bob = await live_board(browser, demo_server, "bob@example.com")
    errors: list[str] = []
    bob.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    navigations = await mark_page(bob)
    alice = await sign_in(await new_context(browser), demo_server, "alice@example.com")
    await alice.goto(f"{demo_server.url}/o/acme/backlog")
    await expect_live(alice)
    backlog = await others.call("alice@example.com", "GET", "/backlog")
    story = next(s for s in backlog["stories"] if s["title"] == "Export the board")
    header = bob.locator("#sprint-header")
    await expect(header).to_have_attribute("data-stories", "3")

    # Alice moves the story from her backlog page into the active sprint.
    row = alice.locator(f'[data-backlog-story-id="{story["id"]}"]')
    await row.locator("select[name=sprint_id]").select_option(
        label="Sprint 14 — Live board (active)"
    )
    await row.get_by_role("button", name="Move", exact=True).click()
    await expect(bob.locator(f"#group-story-{story['id']} .card")).to_have_count(2)
    await expect(header).to_have_attribute("data-stories", "4")
    await expect(header).to_have_attribute("data-total", "15")
    await expect(alice.locator(f'[data-backlog-story-id="{story["id"]}"]')).to_have_count(0)

    # Review, then completion with the unfinished work to the backlog.
    await alice.goto(f"{demo_server.url}/o/acme/sprints")
    await alice.get_by_role("button", name="Move to review").click()
    await expect(bob.locator("#sprint-header .sprint-status")).to_have_text("Review")
    await alice.goto(f"{demo_server.url}/o/acme/sprints/1/complete")
    await alice.get_by_label("The backlog").check()
    await alice.get_by_role("button", name="Complete sprint").click()
    await expect(alice.locator("#sprint-report")).to_have_attribute("data-final", "true")

    await expect(bob.locator("#board")).to_have_attribute("data-closed", "true")
    await expect(bob.locator("#board-closed")).to_contain_text("This sprint is completed")
    await expect(bob.locator("form[data-action]")).to_have_count(0)
    await expect(bob.locator(".card")).to_have_count(3)  # the completed ones stay
    await expect(bob.locator("#sprint-header .sprint-status")).to_have_text("Completed")
    assert await bob.evaluate("window.__marker") == 1 and navigations == []
    assert errors == []


async def test_a_task_page_follows_its_story_to_the_backlog(
    demo_server: Server, browser: Browser, others: Others
):
    bob = await sign_in(await new_context(browser), demo_server, "bob@example.com")
    board = await others.call("bob@example.com", "GET", "/sprints/1/tasks")
    task = next(
        t
        for t in board["tasks"]
        if t["status"] == "available" and t["storyTitle"] == "Filter the board"
    )
    await bob.goto(f"{demo_server.url}/o/acme/tasks/{task['id']}")
    await expect_live(bob)
    await expect(bob.locator("#task-live")).to_have_attribute("data-sprint-id", "1")
    await others.call(
        "alice@example.com", "PUT", f"/stories/{task['storyId']}/sprint", body={"sprintId": None}
    )
    # The page reloads itself where the task now is: the backlog (no sprint).
    await expect(bob.locator("#task-live")).to_have_attribute("data-sprint-id", "")
    await expect_live(bob)
