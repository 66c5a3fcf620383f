"""A task's page is live: it opens the same stream as the board (narrowed to the task's
sprint), and its card and history follow someone else's change without a reload, then
equal a reload. Without JavaScript it is the same page, still.

Demo data: "Accept invitations on first sign-in" is available.
"""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser_kit import (
    Others,
    assert_no_page_load,
    expect_live,
    mark_page,
    new_context,
    sign_in,
)
from tests.server import Server

pytestmark = pytest.mark.browser

AVAILABLE = "Accept invitations on first sign-in"

TASK_JS = """(id) => {
  const card = document.getElementById('task-' + id);
  return {
    status: card.getAttribute('data-status'),
    owner: card.getAttribute('data-owner-id'),
    actions: [...card.querySelectorAll('form[data-action]')].filter((f) => f.checkVisibility())
      .map((f) => f.getAttribute('data-action')),
    history: [...document.querySelectorAll('#task-history > li')]
      .map((li) => li.getAttribute('data-event-id')),
  };
}"""


async def task_page(
    browser: Browser, server: Server, email: str, task_id: int, *, js: bool = True
) -> Page:
    page = await sign_in(await new_context(browser, js=js), server, email)
    await page.goto(f"{server.url}/o/acme/tasks/{task_id}")
    await expect(page.locator(f"#task-{task_id}")).to_be_visible()
    return page


async def test_the_task_page_follows_anothers_change_and_equals_a_reload(
    demo_server: Server, browser: Browser, others: Others
):
    task_id = await others.task_id(AVAILABLE)
    bob = await task_page(browser, demo_server, "bob@example.com", task_id)
    await expect_live(bob)
    before = await bob.evaluate(TASK_JS, task_id)
    assert before["status"] == "available"
    navigations = await mark_page(bob)

    await others.take("carol@example.com", task_id)

    card = bob.locator(f"#task-{task_id}")
    await expect(card).to_have_attribute("data-status", "owned")
    newest = str(await others.newest())
    await expect(bob.locator("#task-history > li").first).to_have_attribute("data-event-id", newest)
    await assert_no_page_load(bob, navigations)
    live = await bob.evaluate(TASK_JS, task_id)
    assert live["owner"] == str((await others.user("carol@example.com")).id)
    assert live["actions"] == []  # carol's task: nothing for bob to press
    reloaded = await bob.context.new_page()
    await reloaded.goto(bob.url)
    assert await reloaded.evaluate(TASK_JS, task_id) == live


async def test_without_javascript_the_task_page_is_the_same_page(
    demo_server: Server, browser: Browser, others: Others
):
    task_id = await others.task_id(AVAILABLE)
    with_js = await task_page(browser, demo_server, "bob@example.com", task_id)
    plain = await task_page(browser, demo_server, "bob@example.com", task_id, js=False)
    assert await plain.evaluate(TASK_JS, task_id) == await with_js.evaluate(TASK_JS, task_id)
