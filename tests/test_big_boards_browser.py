"""A big board in Chromium: Bigco's sprint of 200 tasks (`demo --big`), whose cards get
their buttons as they near the screen, are pointed at or focused; my own take answered
with the card alone; the live board still equal to a reload; and the same board without
JavaScript, every button in it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select

from app.models import Task
from app.web import SCRIPT_COOKIE
from tests.browser_kit import Others, expect_live, new_context, open_page, settled, sign_in
from tests.conftest import load_demo_into, others_on
from tests.server import Server, running_server

pytestmark = pytest.mark.browser

TASKS = 200  # over app.js's LAZY_AFTER (150): buttons come as cards near the screen


@pytest.fixture
async def big_server(database_url: str) -> AsyncIterator[Server]:
    await load_demo_into(database_url, big=TASKS)
    with running_server(database_url) as server:
        yield server


@pytest.fixture
async def big_others(big_server: Server, database_url: str) -> AsyncIterator[Others]:
    async with others_on(big_server, database_url) as people:
        yield people


# The board as a person sees it, buttons apart (those depend on where the page scrolled).
SHAPE_JS = """() => ({
  groups: [...document.querySelectorAll('[data-group]')].map((g) => [
    g.getAttribute('data-group'), g.getAttribute('data-count'),
    [...g.querySelectorAll('.cards > .card')].map((c) =>
      [c.id, c.getAttribute('data-status'), c.getAttribute('data-owner-id')])]),
  header: ['data-progress', 'data-done', 'data-total', 'data-stories']
    .map((n) => document.getElementById('sprint-header').getAttribute(n)),
  chips: [...document.querySelectorAll('.chip-count')].map((c) => c.textContent.trim()),
})"""


async def shape(page: Page) -> Any:
    return await page.evaluate(SHAPE_JS)


async def board(browser: Browser, server: Server, email: str, query: str = "") -> Page:
    page = await sign_in(await new_context(browser), server, email)
    await page.goto(page.url.split("?")[0] + query)  # (now with the script's cookie)
    await expect_live(page)
    return page


async def test_far_cards_get_their_buttons_when_focused_and_keys_work_on_them(
    big_server: Server, browser: Browser
):
    page = await board(browser, big_server, "mia@example.com")
    cards = page.locator(".card")
    await expect(cards).to_have_count(TASKS)
    later = page.locator('.card[data-controls="later"]')
    waiting = await later.count()
    assert 0 < waiting < TASKS  # the cards near the screen have theirs, the rest wait
    assert await page.locator("form[data-action]").count() < TASKS
    # The first card has its buttons; the last is far below and has none yet.
    await expect(cards.first.locator("form[data-action]").first).to_be_attached()
    last = cards.last
    await expect(last).to_have_attribute("data-controls", "later")
    # A card waiting for its buttons is a handful of elements (with them, about 16).
    inside = await page.evaluate("document.querySelectorAll('.card *').length")
    assert inside / TASKS < 12, inside

    # Keyboard: focus moves to a far available card; its key takes it.
    waiting_id = await page.locator(
        '.card[data-controls="later"][data-status="available"]'
    ).last.get_attribute("data-task-id")
    far = page.locator(f"#task-{waiting_id}")
    task_id = waiting_id
    await far.focus()
    await expect(far.locator('form[data-action="take"] button')).to_be_attached()
    await page.keyboard.press("t")
    card = page.locator(f"#task-{task_id}")
    await expect(card).to_have_attribute("data-status", "owned")
    await expect(card.locator('form[data-action="start"] button')).to_be_visible()


@pytest.mark.console_errors("its stream is cut on purpose: only the answer can move the card")
async def test_my_take_in_the_status_view_is_answered_with_the_card_alone(
    big_server: Server, browser: Browser
):
    page = await sign_in(await new_context(browser), big_server, "mia@example.com")
    # No stream: what the page shows of my take comes from the answer alone.
    await page.route("**/events?*", lambda route: route.abort())
    await page.goto(page.url.split("?")[0] + "?group=status")
    available = page.locator("[data-group=available] .card").first
    task_id = await available.get_attribute("data-task-id")
    owned_before = int(await page.locator("[data-group=owned]").get_attribute("data-count") or 0)
    chip = page.locator('.chip[data-filter="status"][data-value="owned"] .chip-count')
    chip_before = int((await chip.text_content() or "0").strip())
    async with page.expect_response(lambda r: r.url.endswith(f"/tasks/{task_id}/take")) as info:
        await available.locator('form[data-action="take"] button').click()
    answer = await (await info.value).text()
    assert "data-live-card" in answer and 'id="group-' not in answer
    assert len(answer) < 4_000  # the card and the counts, not four columns of 200 cards
    card = page.locator(f"[data-group=owned] #task-{task_id}")
    await expect(card).to_have_attribute("data-status", "owned")
    await expect(card.locator('form[data-action="start"] button')).to_be_visible()
    await expect(page.locator("[data-group=owned]")).to_have_attribute(
        "data-count", str(owned_before + 1)
    )
    await expect(chip).to_have_text(str(chip_before + 1))


async def test_the_big_live_board_equals_a_reload_in_both_groupings(
    big_server: Server, browser: Browser, big_others: Others
):
    pages = {
        q: await board(browser, big_server, "olive@example.com", q) for q in ("", "?group=status")
    }
    async with big_others.db.read() as s:
        ids = list(
            await s.scalars(
                select(Task.id).where(Task.status == "available").order_by(Task.id.desc()).limit(3)
            )
        )
    far, near, other = ids  # the newest ids are the last cards of their stories
    await big_others.take("max@example.com", near, org="bigco")
    await big_others.call("max@example.com", "POST", f"/tasks/{near}/work/start", org="bigco")
    await big_others.call("max@example.com", "POST", f"/tasks/{near}/work/complete", org="bigco")
    # After the last change that brought the header, only counts keep the chips true.
    await big_others.take("mia@example.com", other, org="bigco")
    await big_others.call("mia@example.com", "DELETE", f"/tasks/{other}/ownership", org="bigco")
    await big_others.take("mia@example.com", far, org="bigco")
    newest = await big_others.newest("bigco")
    for query, page in pages.items():
        await settled(page, newest)
        await expect(page.locator(f"#task-{near}")).to_have_attribute("data-status", "completed")
        live = await shape(page)
        fresh = await open_page(page.context, page.url)
        assert live == await shape(fresh), f"the live board at {query or 'story'} differs"
        await fresh.close()


async def test_without_javascript_every_card_of_a_big_board_has_its_buttons(
    big_server: Server, browser: Browser
):
    context = await new_context(browser, js=False)
    # Even a browser that once ran the script (and said so) gets them, by way of a refresh.
    await context.add_cookies([{"name": SCRIPT_COOKIE, "value": "1", "url": big_server.url}])
    page = await sign_in(context, big_server, "mia@example.com")
    await expect(page.locator(".card")).to_have_count(TASKS)
    await expect(page.locator('.card[data-controls="later"]')).to_have_count(0)
    available = page.locator('.card[data-status="available"]').last
    task_id = await available.get_attribute("data-task-id")
    await available.locator('form[data-action="take"] button').click()
    await expect(page.locator(f"#task-{task_id}")).to_have_attribute("data-status", "owned")
