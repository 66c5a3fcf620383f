"""axe-core (npm, injected by the test) on every kind of page: no critical or serious
violation of WCAG 2.0/2.1 A and AA. Also: focus is visible on every control, and motion
stops for people who ask for less of it."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser_kit import axe_violations, new_context, sign_in
from tests.server import Server

pytestmark = pytest.mark.browser

PAGES = [
    "{board}",
    "{board}?group=status",
    "{board}?status=owned&status=inprogress&mine=1",
    "{board}?group=status&available=1",
    "/o/acme/tasks/3",
    "/o/acme/sprints",
    "/o/acme/members",
    "/settings/tokens",
    # The sprint cycle: the backlog, a completed sprint's board and report, velocity,
    # and the forms for editing and completing a sprint.
    "/o/acme/backlog",
    "/o/acme/sprints/3",
    "/o/acme/sprints/3/report",
    "/o/acme/velocity",
    "/o/acme/sprints/1/edit",
    "/o/acme/backlog/stories/new",
    # Keeping the board tidy: My work and the archive.
    "/o/acme/mine",
    "/o/acme/archive",
]


async def owner_on(browser: Browser, server: Server) -> tuple[Page, str]:
    page = await sign_in(await new_context(browser), server, "alice@example.com")
    return page, page.url.split("?")[0].removeprefix(server.url)


async def test_the_sign_in_page_has_no_serious_violations(demo_server: Server, browser: Browser):
    page = await (await new_context(browser)).new_page()
    await page.goto(f"{demo_server.url}/login")
    assert await axe_violations(page) == []


@pytest.mark.parametrize("path", PAGES)
async def test_every_page_has_no_serious_violations(
    demo_server: Server, browser: Browser, path: str
):
    page, board = await owner_on(browser, demo_server)
    await page.goto(demo_server.url + path.format(board=board))
    await expect(page.locator("main h1").first).to_be_visible()
    assert await axe_violations(page) == []


async def test_the_shortcuts_dialog_has_no_serious_violations(
    demo_server: Server, browser: Browser
):
    page, _board = await owner_on(browser, demo_server)
    # The page's script has run once it shows the button it keeps hidden without JS.
    await expect(page.locator("[data-open-shortcuts]")).to_be_visible()
    await page.keyboard.press("?")
    await expect(page.locator("dialog#shortcuts")).to_be_visible()
    assert await axe_violations(page, "#shortcuts") == []


FOCUS_RING_JS = """() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  const outlined = style.outlineStyle !== 'none' && style.outlineWidth !== '0px';
  return [el.tagName + (el.className ? '.' + el.className.split(' ')[0] : ''),
          style.boxShadow !== 'none' || outlined];
}"""


async def test_focus_is_visible_on_every_control_of_the_board(
    demo_server: Server, browser: Browser
):
    page, board = await owner_on(browser, demo_server)
    await page.goto(f"{demo_server.url}{board}?group=status")
    unseen = []
    for _ in range(60):  # the header, the filters and the first cards' controls
        await page.keyboard.press("Tab")
        where, ringed = await page.evaluate(FOCUS_RING_JS)
        if not ringed:
            unseen.append(where)
    assert unseen == []


async def test_motion_stops_for_people_who_ask_for_less(demo_server: Server, browser: Browser):
    context = await browser.new_context(reduced_motion="reduce")
    page = await sign_in(context, demo_server, "bob@example.com")
    assert (
        await page.evaluate(
            "() => getComputedStyle(document.querySelector('.connection-dot')).animationName"
        )
        == "none"
    )
    assert await page.evaluate(
        "() => getComputedStyle(document.querySelector('.progress > span')).transitionDuration"
    ) in ("0s", "0s, 0s")
