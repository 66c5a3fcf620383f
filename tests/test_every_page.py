"""Every page, on a 375 px phone and a 1280 px screen, as an owner and as a member: none
scrolls sideways, and none logs a console error (the `browser` fixture fails the test
on any). The pages are the demo's, with their live streams open."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser_kit import Others, expect_live, live_board, new_context, sign_in
from tests.conftest import CSRF
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
SIDEWAYS_JS = """(inner) => {
  const width = document.documentElement.clientWidth;
  // A box that scrolls sideways inside the page counts too where it should not need to
  // (a list of things, the burndown's numbers; a wide table of figures may scroll).
  const boxes = inner
    ? [...document.querySelectorAll('.table-scroll:has(.table-stack), .numbers-scroll')]
    .filter((el) => el.checkVisibility() && el.scrollWidth > el.clientWidth + 1) : [];
  if (boxes.length) return boxes.map((el) => `scrolls inside: ${el.className}`);
  if (document.documentElement.scrollWidth <= width) return [];
  return [...document.querySelectorAll('body *')]
    .filter((el) => el.getBoundingClientRect().right > width + 0.5 && el.checkVisibility())
    .slice(0, 6)
    .map((el) => `${el.tagName.toLowerCase()}#${el.id}.${[...el.classList].join('.')}`
      + ` right=${Math.round(el.getBoundingClientRect().right)}`);
}"""


async def sideways(page: Page, inner: bool) -> list[str]:
    return await page.evaluate(SIDEWAYS_JS, inner)  # type: ignore[no-any-return]


# A phone, a small tablet (tables keep their columns there, scrolling in their box if
# they must), a laptop; the owner, who sees every control, at all three.
@pytest.mark.parametrize(
    ("who", "width"),
    [("alice", 375), ("alice", 700), ("alice", 1280), ("bob", 375), ("bob", 1280)],
)
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
        for numbers in await page.locator(".burndown-numbers:not([open]) summary").all():
            await numbers.click()  # the burndown's numbers, open: they must fit too
        live = page.locator("#connection")
        if await live.count():
            await expect(live).to_have_attribute("data-state", "live")
        if found := await sideways(page, inner=width != 700):
            wide[path] = found
    await context.close()

    # Signed out: the sign-in page.
    context = await browser.new_context(viewport={"width": width, "height": 900})
    page = await context.new_page()
    await page.goto(f"{demo_server.url}/login")
    if found := await sideways(page, inner=True):
        wide["/login"] = found
    await context.close()
    assert wide == {}, f"pages wider than {width} px: {wide}"


# --- the small things a day of use shows ----------------------------------------------


async def test_small_things_a_day_of_use_shows(
    demo_server: Server, browser: Browser, others: Others
):
    alice = await live_board(browser, demo_server, "alice@example.com")
    card = alice.locator("#task-3")
    badge = await card.locator(".status-badge").bounding_box()

    # Bob opens the task's page: his avatar joins the card, its status badge stays put.
    bob = await sign_in(await new_context(browser), demo_server, "bob@example.com")
    await bob.goto(f"{demo_server.url}/o/acme/tasks/3")
    await expect_live(bob)
    await expect(card.locator(".card-viewers [data-presence-user-id]")).to_have_count(1)
    assert await card.locator(".status-badge").bounding_box() == badge

    # Alice renames it: Bob's page heading and tab follow; his history reads as events,
    # not numbers that look like task ids.
    auth = {"Authorization": f"Bearer {await others.token('alice@example.com')}"}
    async with httpx.AsyncClient(base_url=f"{demo_server.url}/api/v1", headers=auth) as api:
        etag = (await api.get("/tasks/3")).headers["ETag"]
        renamed = await api.patch(
            "/tasks/3", json={"title": "Accept invites"}, headers={"If-Match": etag}
        )
        assert renamed.status_code == 200
    await expect(bob.locator("main h1")).to_have_text("#3 Accept invites")
    await expect(bob).to_have_title("#3 Accept invites · Sprintboard")
    await expect(bob.locator("#task-history li").first).to_contain_text("Alice Archer edited it")
    assert not re.match(r"\s*#\d", await bob.locator("#task-history li").first.inner_text())

    # A field nearly full says how much room is left, and at its limit that it is.
    await bob.goto(f"{demo_server.url}/o/acme/tasks/3/edit")
    title = bob.locator("#title")
    await title.fill("x" * 195)
    await expect(bob.locator("#title-left")).to_have_text("5 characters left of 200")
    await title.fill("x" * 200)
    await expect(bob.locator("#title-left")).to_have_text("At the limit: 200 characters")


async def test_giving_up_without_javascript_asks_at_a_plain_address(
    demo_server: Server, browser: Browser
):
    page = await sign_in(await new_context(browser, js=False), demo_server, "bob@example.com")
    await page.locator("#task-9 form[data-action=release] button").click()
    assert page.url.endswith("/o/acme/tasks/9/release?ask=1")
    await expect(page.locator("main h1")).to_contain_text("Give up")


async def test_a_criterion_past_its_limit_is_refused_and_names_it(
    sign_in_as: Any, scene: Any
) -> None:
    alice = await sign_in_as(scene.alice)
    story = scene.acme.stories[0]
    answer = await alice.post(
        f"/o/acme/stories/{story.id}/edit",
        form={
            "csrf_token": CSRF,
            "title": story.title,
            "points": "3",
            "new-1-given": "g" * 501,
            "new-1-when": "w",
            "new-1-then": "t",
        },
    )
    assert answer.status_code == 422
    said = await answer.get_data(as_text=True)
    assert "at most 500 characters" in said
    assert 'value="w"' in said  # what was typed comes back
