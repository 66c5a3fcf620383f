"""Edit pages in Chromium: another person's save shows as a notice naming who and what,
with nothing typed touched; people on the same edit page see each other, and the board
marks them as editing; a save that meets their change shows both texts, on a phone too.

Demo data: "Accept invitations on first sign-in" is available.
"""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser_kit import Others, expect_live, live_board, new_context, sign_in
from tests.server import Server

pytestmark = pytest.mark.browser

TASK = "Accept invitations on first sign-in"


async def edit_page(browser: Browser, server: Server, email: str, task_id: int) -> Page:
    page = await sign_in(await new_context(browser), server, email)
    await page.goto(f"{server.url}/o/acme/tasks/{task_id}/edit")
    await expect_live(page)
    return page


async def save(page: Page) -> None:
    await page.locator(".form-actions button[type=submit]").click()


async def test_anothers_save_shows_a_notice_and_keeps_what_is_typed(
    demo_server: Server, browser: Browser, others: Others
) -> None:
    task_id = await others.task_id(TASK)
    alice = await edit_page(browser, demo_server, "alice@example.com", task_id)
    bob = await edit_page(browser, demo_server, "bob@example.com", task_id)
    await expect(alice.locator("[data-editing-too]")).to_have_text(
        "Bob Baker is editing this task too"
    )
    await alice.locator("#description").fill("Alice is still typing")

    await bob.locator("#title").fill("Bob renamed it")
    await bob.locator("#estimate_hours").fill("5")
    await save(bob)

    notice = alice.locator("[data-edit-notice]")
    await expect(notice).to_be_visible(timeout=2_000)
    await expect(notice).to_contain_text("Bob changed the title and estimate")
    assert await alice.locator("#description").input_value() == "Alice is still typing"
    assert await alice.locator("#title").input_value() == TASK  # not replaced under her

    # Her save keeps her description and Bob's title: different fields merge.
    await save(alice)
    await alice.wait_for_url(f"**/o/acme/tasks/{task_id}")
    stored = await others.task("Bob renamed it")
    assert (stored.description, stored.estimate_hours) == ("Alice is still typing", 5)


async def test_the_board_marks_someone_editing_a_card(
    demo_server: Server, browser: Browser, others: Others
) -> None:
    task_id = await others.task_id(TASK)
    board = await live_board(browser, demo_server, "carol@example.com")
    await edit_page(browser, demo_server, "bob@example.com", task_id)
    chip = board.locator(f"#task-{task_id} .card-viewers [data-editing='true']")
    await expect(chip).to_have_count(1)
    await expect(chip).to_have_attribute("title", "Bob Baker is editing this task")


@pytest.mark.parametrize("width", [1280, 375])
async def test_a_conflict_shows_both_texts_and_saving_again_applies_mine(
    demo_server: Server, browser: Browser, others: Others, width: int
) -> None:
    task_id = await others.task_id(TASK)
    alice = await edit_page(browser, demo_server, "alice@example.com", task_id)
    await alice.set_viewport_size({"width": width, "height": 900})
    bob = await edit_page(browser, demo_server, "bob@example.com", task_id)
    await bob.locator("#title").fill("Bob's title")
    await save(bob)
    await expect(alice.locator("[data-edit-notice]")).to_be_visible()

    await alice.locator("#title").fill("Alice's title")
    await save(alice)

    conflict = alice.locator('[data-conflict-field="title"]')
    await expect(conflict).to_have_attribute("data-theirs", "Bob's title")
    await expect(conflict).to_contain_text("Bob Baker")
    assert await alice.locator("#title").input_value() == "Alice's title"
    wide = await alice.evaluate(
        "document.documentElement.scrollWidth > document.documentElement.clientWidth"
    )
    assert not wide, "the conflict view scrolls sideways"

    await save(alice)
    await alice.wait_for_url(f"**/o/acme/tasks/{task_id}")
    assert (await others.task_id("Alice's title")) == task_id
