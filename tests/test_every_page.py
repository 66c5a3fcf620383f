"""Every page, on a 375 px phone and a 1280 px screen, as an owner and as a member: none
scrolls sideways, and none logs a console error (the `browser` fixture fails the test
on any). The pages are the demo's, with their live streams open."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser_kit import sign_in
from tests.server import Server

pytestmark = pytest.mark.browser

# Demo data: Sprint 14 (id 1) is under way, Sprint 12 and 13 (2, 3) are completed.
EVERYONE = [
    "/o/acme/sprints/1",
    "/o/acme/sprints/1?group=status",
    "/o/acme/sprints/1?status=owned&mine=1",
    "/o/acme/sprints/3",
    "/o/acme/tasks/2",
    "/o/acme/tasks/3/edit",
    "/o/acme/stories/1/tasks/new",
    "/o/acme/tasks/3/release",
    "/o/acme/sprints",
    "/o/acme/backlog",
    "/o/acme/sprints/3/report",
    "/o/acme/sprints/1/report",
    "/o/acme/velocity",
    "/o/acme/members",
    "/settings/tokens",
    "/o/acme/archive",
    "/o/acme/mine",
]
OWNERS = [
    "/o/acme/stories/1/edit",
    "/o/acme/sprints/1/edit",
    "/o/acme/backlog/stories/new",
    "/o/acme/sprints/1/stories/new",
    "/o/acme/members/3/remove",
]

# What sticks out past the right edge, for the failure message.
SIDEWAYS_JS = """() => {
  const width = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth <= width) return [];
  return [...document.querySelectorAll('body *')]
    .filter((el) => el.getBoundingClientRect().right > width + 0.5 && el.checkVisibility())
    .slice(0, 6)
    .map((el) => `${el.tagName.toLowerCase()}#${el.id}.${[...el.classList].join('.')}`
      + ` right=${Math.round(el.getBoundingClientRect().right)}`);
}"""


async def sideways(page: Page) -> list[str]:
    return await page.evaluate(SIDEWAYS_JS)  # type: ignore[no-any-return]


@pytest.mark.parametrize("width", [375, 1280])
@pytest.mark.parametrize("who", ["alice", "bob"])
async def test_every_page_fits_and_logs_no_error(
    demo_server: Server, browser: Browser, who: str, width: int
):
    context = await browser.new_context(viewport={"width": width, "height": 900})
    context.set_default_timeout(10_000)
    page = await sign_in(context, demo_server, f"{who}@example.com")
    wide: dict[str, list[str]] = {}
    for path in EVERYONE + (OWNERS if who == "alice" else []):
        answer = await page.goto(demo_server.url + path)
        assert answer is not None and answer.status == 200, path
        await expect(page.locator("main h1").first).to_be_attached()
        live = page.locator("#connection")
        if await live.count():
            await expect(live).to_have_attribute("data-state", "live")
        if found := await sideways(page):
            wide[path] = found
    await context.close()

    # Signed out: the sign-in page.
    context = await browser.new_context(viewport={"width": width, "height": 900})
    page = await context.new_page()
    await page.goto(f"{demo_server.url}/login")
    if found := await sideways(page):
        wide["/login"] = found
    await context.close()
    assert wide == {}, f"pages wider than {width} px: {wide}"
