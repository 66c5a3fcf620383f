"""The burndown in Chromium: it follows a change live on another person's board and then
equals a reload, the board without JavaScript shows the same figure and table, axe finds
nothing wrong inside it, and it fits a phone.

Demo data: bob has "Write the callback handler" in progress (so he can complete it).
"""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser_kit import (
    assert_no_page_load,
    axe_violations,
    int_attr,
    live_board,
    mark_page,
    new_context,
    sign_in,
)
from tests.server import Server

pytestmark = pytest.mark.browser

IN_PROGRESS = "Write the callback handler"

# Everything the figure says, read off the page: its hooks, what the SVG says and draws,
# and the table's rows.
FIGURE_JS = """() => {
  const f = document.getElementById('burndown');
  const svg = f.querySelector('svg');
  return {
    hooks: ['data-total', 'data-remaining', 'data-days', 'data-series']
      .map((name) => [name, f.getAttribute(name)]),
    role: svg.getAttribute('role'),
    title: svg.querySelector('title').textContent,
    desc: svg.querySelector('desc').textContent,
    lines: [...svg.querySelectorAll('polyline')]
      .map((l) => [l.getAttribute('class'), l.getAttribute('points')]),
    today: svg.querySelector('.today')?.getAttribute('d') ?? null,
    rows: [...f.querySelectorAll('tbody tr')]
      .map((r) => [...r.children].map((cell) => cell.textContent.trim())),
  };
}"""


async def figure(page: Page) -> dict[str, object]:
    return await page.evaluate(FIGURE_JS)  # type: ignore[no-any-return]


async def test_a_completion_drops_the_other_persons_chart_live_and_it_equals_a_reload(
    demo_server: Server, browser: Browser
):
    alice = await live_board(browser, demo_server, "alice@example.com")
    bob = await live_board(browser, demo_server, "bob@example.com")
    chart = alice.locator("#burndown")
    remaining = await int_attr(chart, "data-remaining")
    series = (await chart.get_attribute("data-series") or "").split(",")
    assert series[-1] == str(remaining)  # today's figure is the header's "not done"
    # Alice is reading the numbers: the change must not close the table on her.
    await chart.locator("summary").click()
    await expect(chart.locator("table")).to_be_visible()
    navigations = await mark_page(alice)

    card = bob.locator(".card", has_text=IN_PROGRESS)
    await card.locator("form[data-action=complete] button").click()

    await expect(chart).to_have_attribute("data-remaining", str(remaining - 1))
    await expect(chart).to_have_attribute(
        "data-series", ",".join([*series[:-1], str(remaining - 1)])
    )
    await expect(chart.locator("tbody tr[aria-current=date] td").first).to_have_text(
        str(remaining - 1)
    )
    await expect(chart.locator("table")).to_be_visible()
    # …and her keyboard focus stays on the numbers' summary, in its new copy.
    assert await alice.evaluate("document.activeElement.id") == "burndown-numbers"
    await assert_no_page_load(alice, navigations)

    live = await figure(alice)
    reloaded = await alice.context.new_page()
    await reloaded.goto(alice.url)
    assert await figure(reloaded) == live


async def test_the_board_without_javascript_shows_the_same_figure_and_table(
    demo_server: Server, browser: Browser
):
    with_js = await live_board(browser, demo_server, "bob@example.com")
    plain = await sign_in(await new_context(browser, js=False), demo_server, "bob@example.com")
    shown = await figure(plain)
    assert shown == await figure(with_js)
    days = int(dict(shown["hooks"])["data-days"])  # type: ignore[call-overload]
    assert len(shown["rows"]) == days  # type: ignore[arg-type]
    # Without JavaScript the numbers open like any <details>.
    await plain.locator("#burndown summary").click()
    await expect(plain.locator("#burndown table")).to_be_visible()


async def test_axe_finds_no_violation_inside_the_figure(demo_server: Server, browser: Browser):
    page = await live_board(browser, demo_server, "bob@example.com")
    await page.locator("#burndown summary").click()  # the table too
    await expect(page.locator("#burndown table")).to_be_visible()
    assert await axe_violations(page, "#burndown") == []


async def test_the_chart_fits_a_phone(demo_server: Server, browser: Browser):
    context = await browser.new_context(viewport={"width": 375, "height": 800}, is_mobile=True)
    page = await sign_in(context, demo_server, "bob@example.com")
    box = await page.locator("#burndown svg").bounding_box()
    assert box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= 375
    assert box["width"] >= 200  # wide enough to read, not squeezed beside the facts
    assert await page.evaluate("document.documentElement.scrollWidth") <= 375
