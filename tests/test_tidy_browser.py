"""Keeping the board tidy in a real browser: My work follows a take made elsewhere and
answers keys; an owner freeing a task toasts its holder with who and why; archiving
offers its undo for as long as it is wanted (well past 8 s) and a teammate's open board
follows both ways; a completed card reopens by its key."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser_kit import Others, expect_live, live_board, new_context
from tests.server import Server

pytestmark = pytest.mark.browser

# Demo data, Sprint 14: #3 is available, #9 is Bob's (owned), #5 is Bob's (done).
AVAILABLE, BOBS, BOBS_DONE = 3, 9, 5
ALICES_DONE, CAROLS_DONE = 1, 10
SPRINT_13 = 3  # completed


async def on_a_clock(browser: Browser, server: Server, email: str) -> Page:
    """Signed in on a page whose timers run on a clock the test moves."""
    page = await (await new_context(browser)).new_page()
    await page.clock.install()
    await page.goto(f"{server.url}/login")
    form = page.locator("form[action$='/login/dev']")
    await form.locator("[name=email]").fill(email)
    await form.locator("button[type=submit]").click()
    await expect(page.locator("#sprint-header")).to_be_visible()
    return page


async def test_my_work_follows_takes_and_frees_and_toasts_the_holder(
    demo_server: Server, browser: Browser, others: Others
):
    bob = await on_a_clock(browser, demo_server, "bob@example.com")
    errors: list[str] = []
    bob.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    # He also has a completed sprint's board open, in another tab.
    elsewhere = await bob.context.new_page()
    await elsewhere.goto(f"{demo_server.url}/o/acme/sprints/{SPRINT_13}")
    await expect_live(elsewhere)
    total = await elsewhere.locator("#sprint-header").get_attribute("data-total")
    await bob.get_by_role("link", name="My work").click()
    await expect_live(bob)
    held = bob.locator("#mine-lists .mine-held")
    await expect(held.locator(f"#task-{BOBS}")).to_be_visible()
    await expect(held.locator(f"#task-{AVAILABLE}")).to_have_count(0)

    # Bob takes a task from another device: it joins his list without a reload.
    await others.take("bob@example.com", AVAILABLE)
    card = held.locator(f"#task-{AVAILABLE}")
    await expect(card).to_be_visible()
    # Keys work here as on the board: s starts it.
    await card.focus()
    await bob.keyboard.press("s")
    await expect(held.locator(f"#task-{AVAILABLE}")).to_have_attribute("data-status", "inprogress")

    # Alice frees his other task, with a reason: he is told who and why, and it leaves.
    await others.call(
        "alice@example.com", "DELETE", f"/tasks/{BOBS}/ownership", body={"reason": "Away all week"}
    )
    toast = bob.locator("#toasts .toast", has_text="Alice freed")
    await expect(toast).to_contain_text("“Replay from the event log”: Away all week")
    await expect(held.locator(f"#task-{BOBS}")).to_have_count(0)
    # The other sprint's board is told too, and only that (its header is its own).
    await expect(elsewhere.locator("#toasts .toast", has_text="Alice freed")).to_be_visible()
    await expect(elsewhere.locator("#sprint-header")).to_have_attribute("data-total", total or "")
    await expect(elsewhere.locator(f"#task-{BOBS}")).to_have_count(0)
    # It stays (the others go by in 4 s) until he closes it.
    await bob.clock.fast_forward(10_000)
    await expect(toast).to_be_visible()
    await toast.get_by_role("button", name="Dismiss").click()
    await expect(toast).to_have_count(0)
    assert errors == []


async def test_archive_offers_its_undo_and_a_teammates_board_follows(
    demo_server: Server, browser: Browser, others: Others
):
    carol = await live_board(browser, demo_server, "carol@example.com")
    header = carol.locator("#sprint-header")
    await expect(header).to_have_attribute("data-total", "13")
    alice = await on_a_clock(browser, demo_server, "alice@example.com")
    await alice.goto(f"{demo_server.url}/o/acme/tasks/{AVAILABLE}")
    await alice.get_by_role("button", name="Archive this task").click()

    # Back on the board, the card gone, the undo offered; Carol's board follows.
    await expect(alice.locator("#sprint-header")).to_have_attribute("data-total", "12")
    undo = alice.locator("[data-undo]")
    await expect(undo).to_be_visible()
    await expect(alice.locator(f"#task-{AVAILABLE}")).to_have_count(0)
    await expect(carol.locator(f"#task-{AVAILABLE}")).to_have_count(0)
    await expect(header).to_have_attribute("data-total", "12")
    await alice.clock.fast_forward(9_000)  # well past the 8 s it must stay
    await expect(undo).to_be_visible()

    await undo.get_by_role("button", name="Undo").click()
    await expect(alice.locator(f"#task-{AVAILABLE}")).to_be_visible()
    await expect(carol.locator(f"#task-{AVAILABLE}")).to_be_visible()
    await expect(header).to_have_attribute("data-total", "13")

    # Bob's accidental Done, undone by its key on his own board.
    bob = await live_board(browser, demo_server, "bob@example.com")
    done = bob.locator(f"#task-{BOBS_DONE}")
    await expect(done.locator("form[data-action=reopen] button")).to_be_visible()
    await done.focus()
    await bob.keyboard.press("o")
    await expect(done).to_have_attribute("data-status", "owned")
    await expect(carol.locator(f"#task-{BOBS_DONE}")).to_have_attribute("data-status", "owned")
    # A member is offered it on her own done cards only; an owner on everyone's.
    await expect(carol.locator(f"#task-{CAROLS_DONE} form[data-action=reopen]")).to_be_visible()
    await expect(carol.locator(f"#task-{ALICES_DONE} form[data-action=reopen]")).to_be_hidden()
    await expect(alice.locator(f"#task-{CAROLS_DONE} form[data-action=reopen]")).to_be_visible()
