"""The board in a real browser: headless Chromium (Playwright) against a real Hypercorn.

Each test gets its own server on a fresh copy of the demo data (`demo_server`) and its
own Chromium. JavaScript on means htmx answers swapped in place; JavaScript off means
plain form posts and 303 redirects. Only Playwright's auto-waiting expectations wait.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import Browser, Locator, Page, expect
from sqlalchemy import select

from app.auth.accounts import find_org, find_user_by_email
from app.db import Database
from app.models import Role, Sprint
from app.tasks.editing import CriterionFields, StoryFields, TaskFields, create_story, create_task
from tests.browser_kit import (
    BOARD_URL,
    COMPLETE,
    RELEASE,
    START,
    TAKE,
    assert_no_page_load,
    mark_page,
    new_context,
    sign_in,
)
from tests.server import Server

pytestmark = pytest.mark.browser


async def board_as(browser: Browser, server: Server, email: str, *, js: bool = True) -> Page:
    return await sign_in(await new_context(browser, js=js), server, email)


async def user_id(page: Page) -> str:
    uid = await page.locator("body").get_attribute("data-user-id")
    assert uid
    return uid


async def int_attr(locator: Locator, name: str) -> int:
    value = await locator.get_attribute(name)
    assert value is not None and value.isdigit(), f"{name}={value!r}"
    return int(value)


async def available_card(page: Page) -> Locator:
    """An available card whose "I'm on it" button is visible, by its stable id."""
    cards = page.locator("[data-task-id][data-status=available]").filter(
        has=page.locator(f"{TAKE}:visible")
    )
    await expect(cards.first).to_be_visible()
    task_id = await cards.first.get_attribute("data-task-id")
    return page.locator(f"#task-{task_id}")


async def my_held_card(page: Page) -> Locator:
    """A card the signed-in person owns (owned or in progress)."""
    uid = await user_id(page)
    cards = page.locator(
        f"[data-task-id][data-owner-id='{uid}']:is([data-status=owned],[data-status=inprogress])"
    )
    await expect(cards.first).to_be_visible()
    task_id = await cards.first.get_attribute("data-task-id")
    return page.locator(f"#task-{task_id}")


async def chip_count(page: Page, status: str) -> int:
    return await int_attr(page.locator(f"a.chip[data-value={status}] .chip-count"), "data-count")


async def group_count(page: Page, key: str) -> int:
    return await int_attr(page.locator(f"[data-group='{key}']"), "data-count")


async def assert_group_counts_match_cards(page: Page) -> None:
    groups = page.locator("[data-group]")
    assert await groups.count() > 0
    for i in range(await groups.count()):
        group = groups.nth(i)
        cards = await group.locator("[data-task-id]").count()
        assert await int_attr(group, "data-count") == cards, await group.get_attribute("data-group")


# --- sign-in ---------------------------------------------------------------------------


async def test_dev_sign_in_form_lands_on_the_active_sprint_board(
    demo_server: Server, browser: Browser
):
    context = await new_context(browser)
    page = await context.new_page()
    await page.goto(f"{demo_server.url}/login")
    form = page.locator("form[action$='/login/dev']")
    await form.locator("[name=email]").fill("bob@example.com")
    await form.locator("button[type=submit]").click()

    await expect(page).to_have_url(BOARD_URL)
    await expect(page.locator("#sprint-header")).to_be_visible()
    await expect(page.locator("[data-task-id]").first).to_be_visible()
    assert await page.locator("[data-task-id]").count() >= 12
    await expect(page.locator("body")).to_have_attribute("data-user-id", re.compile(r"\S+"))

    # `/` sends a signed-in person straight to the same board.
    board = page.url
    await page.goto(f"{demo_server.url}/")
    await expect(page).to_have_url(board)


# --- with JavaScript: htmx answers, no page load --------------------------------------


@pytest.mark.parametrize("group", ["story", "status"])
async def test_take_start_complete_with_js_update_card_header_and_counts_without_page_load(
    demo_server: Server, browser: Browser, group: str
):
    page = await board_as(browser, demo_server, "bob@example.com")
    if group == "status":
        await page.goto(page.url.split("?")[0] + "?group=status")
        await expect(page.locator("[data-group=available]")).to_be_visible()
    header = page.locator("#sprint-header")
    done = await int_attr(header, "data-done")
    available, owned = await chip_count(page, "available"), await chip_count(page, "owned")
    if group == "status":
        available_group = await group_count(page, "available")
        owned_group = await group_count(page, "owned")
        completed_group = await group_count(page, "completed")
    card = await available_card(page)
    task_id = await card.get_attribute("data-task-id")
    uid = await user_id(page)
    navigations = await mark_page(page)

    await card.locator(TAKE).click()

    await expect(card).to_have_attribute("data-status", "owned")
    await expect(card).to_have_attribute("data-owner-id", uid)
    await expect(card).to_have_attribute("data-owner", "Bob Baker")
    await expect(card.locator(".owner-you")).to_be_visible()
    await expect(card.locator(".owner-you")).to_have_text(re.compile(r"\bYou\b"))
    await expect(card.locator(".owner-name")).to_be_hidden()
    await expect(page.locator("#announcer")).to_have_text(
        re.compile(r"^You took “.+”; it is now in Owned\.$")
    )
    await expect(page.locator("a.chip[data-value=available] .chip-count")).to_have_attribute(
        "data-count", str(available - 1)
    )
    await expect(page.locator("a.chip[data-value=owned] .chip-count")).to_have_attribute(
        "data-count", str(owned + 1)
    )
    await expect(header).to_have_attribute("data-done", str(done))
    if group == "status":
        await expect(page.locator("[data-group=available]")).to_have_attribute(
            "data-count", str(available_group - 1)
        )
        await expect(page.locator("[data-group=owned]")).to_have_attribute(
            "data-count", str(owned_group + 1)
        )
        await expect(page.locator(f"[data-group=owned] #task-{task_id}")).to_be_visible()
    await assert_group_counts_match_cards(page)
    await assert_no_page_load(page, navigations)

    await card.locator(START).click()
    await expect(card).to_have_attribute("data-status", "inprogress")
    await expect(card.locator(COMPLETE)).to_be_visible()

    await card.locator(COMPLETE).click()
    await expect(card).to_have_attribute("data-status", "completed")
    await expect(header).to_have_attribute("data-done", str(done + 1))
    await expect(page.locator("#announcer")).to_have_text(
        re.compile(r"^You completed “.+”; it is now in Done\.$")
    )
    if group == "status":
        await expect(page.locator("[data-group=completed]")).to_have_attribute(
            "data-count", str(completed_group + 1)
        )
        await expect(page.locator(f"[data-group=completed] #task-{task_id}")).to_be_visible()
    await assert_group_counts_match_cards(page)
    await assert_no_page_load(page, navigations)

    # The server kept it: a fresh load shows the same.
    await page.reload()
    await expect(page.locator(f"#task-{task_id}")).to_have_attribute("data-status", "completed")
    await expect(page.locator("#sprint-header")).to_have_attribute("data-done", str(done + 1))


# --- without JavaScript: plain form posts --------------------------------------------


async def test_take_and_complete_without_js_post_forms_and_redirect_to_the_board(
    demo_server: Server, browser: Browser
):
    page = await board_as(browser, demo_server, "bob@example.com", js=False)
    board = page.url
    header = page.locator("#sprint-header")
    done = await int_attr(header, "data-done")
    card = await available_card(page)
    title = (await card.locator(".card-title").inner_text()).strip()

    async with page.expect_response(lambda r: r.request.method == "POST") as posted:
        await card.locator(TAKE).click()
    assert (await posted.value).status == 303
    await expect(page).to_have_url(board)
    await expect(page.locator("#flash")).to_contain_text(f"You took “{title}”")
    await expect(card).to_have_attribute("data-status", "owned")
    await expect(card).to_have_attribute("data-owner", "Bob Baker")
    await expect(card.locator(".owner-you")).to_be_visible()

    async with page.expect_response(lambda r: r.request.method == "POST") as posted:
        await card.locator(COMPLETE).click()
    assert (await posted.value).status == 303
    await expect(page).to_have_url(board)
    await expect(page.locator("#flash")).to_contain_text(f"You completed “{title}”")
    await expect(card).to_have_attribute("data-status", "completed")
    await expect(header).to_have_attribute("data-done", str(done + 1))


# --- releasing asks first ---------------------------------------------------------------


async def test_release_with_js_asks_a_native_confirm_and_only_accepting_releases(
    demo_server: Server, browser: Browser
):
    page = await board_as(browser, demo_server, "bob@example.com")
    card = await my_held_card(page)
    task_id = await card.get_attribute("data-task-id")
    status = await card.get_attribute("data-status")
    title = (await card.locator(".card-title").inner_text()).strip()
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    dialogs: list[str] = []

    async def dismiss(dialog):  # type: ignore[no-untyped-def]
        dialogs.append(f"{dialog.type}: {dialog.message}")
        await dialog.dismiss()

    page.once("dialog", dismiss)
    await card.locator(RELEASE).click()
    await page.evaluate("1")  # the page has run past confirm()
    assert len(dialogs) == 1 and dialogs[0].startswith("confirm:") and title in dialogs[0]
    assert posts == []
    await expect(card).to_have_attribute("data-status", status or "")
    await page.reload()
    card = page.locator(f"#task-{task_id}")
    await expect(card).to_have_attribute("data-status", status or "")
    await expect(card).to_have_attribute("data-owner-id", await user_id(page))

    async def accept(dialog):  # type: ignore[no-untyped-def]
        dialogs.append(f"{dialog.type}: {dialog.message}")
        await dialog.accept()

    page.once("dialog", accept)
    navigations = await mark_page(page)
    await card.locator(RELEASE).click()
    await expect(card).to_have_attribute("data-status", "available")
    await expect(card).to_have_attribute("data-owner-id", "")
    await expect(card).to_have_attribute("data-owner", "")
    await expect(page.locator("#announcer")).to_have_text(
        re.compile(r"^You released “.+”; it is now in Available\.$")
    )
    assert len(dialogs) == 2
    await assert_no_page_load(page, navigations)


async def test_release_without_js_goes_through_a_confirmation_page(
    demo_server: Server, browser: Browser
):
    page = await board_as(browser, demo_server, "bob@example.com", js=False)
    board = page.url
    card = await my_held_card(page)
    task_id = await card.get_attribute("data-task-id")
    status = await card.get_attribute("data-status")
    title = (await card.locator(".card-title").inner_text()).strip()

    # "Keep it" goes back with nothing changed.
    await card.locator(RELEASE).click()
    await expect(page).to_have_url(re.compile(rf"/o/acme/tasks/{task_id}/release\?ask=1$"))
    await expect(page.locator("h1")).to_contain_text(title)
    await page.get_by_role("link", name="Keep it").click()
    await expect(page).to_have_url(board)
    await expect(page.locator(f"#task-{task_id}")).to_have_attribute("data-status", status or "")

    await page.locator(f"#task-{task_id}").locator(RELEASE).click()
    await expect(page).to_have_url(re.compile(rf"/o/acme/tasks/{task_id}/release\?ask=1$"))
    async with page.expect_response(lambda r: r.request.method == "POST") as posted:
        await page.get_by_role("button", name="Yes, give it up").click()
    assert (await posted.value).status == 303
    await expect(page).to_have_url(board)
    card = page.locator(f"#task-{task_id}")
    await expect(card).to_have_attribute("data-status", "available")
    await expect(card).to_have_attribute("data-owner-id", "")
    await expect(page.locator("#flash")).to_contain_text(f"You released “{title}”")


# --- refusals carry a sentence and fresh copies ---------------------------------------


async def carol_takes(browser: Browser, server: Server, task_id: str) -> None:
    carol = await board_as(browser, server, "carol@example.com")
    card = carol.locator(f"#task-{task_id}")
    await card.locator(TAKE).click()
    await expect(card).to_have_attribute("data-status", "owned")
    await expect(card).to_have_attribute("data-owner", "Carol Chen")


@pytest.mark.console_errors(
    "its live stream is cut on purpose: htmx's SSE extension logs each failed reconnect"
)
async def test_stale_take_with_js_is_refused_with_a_sentence_and_a_fresh_card(
    demo_server: Server, browser: Browser
):
    bob = await board_as(browser, demo_server, "bob@example.com")
    # A tab whose live stream is down (a suspended laptop, a broken proxy) goes stale.
    await bob.route("**/events?*", lambda route: route.abort())
    await bob.reload()
    card = await available_card(bob)
    task_id = await card.get_attribute("data-task-id")
    assert task_id

    await carol_takes(browser, demo_server, task_id)
    await expect(card).to_have_attribute("data-status", "available")  # bob's copy is stale

    navigations = await mark_page(bob)
    async with bob.expect_response(lambda r: r.request.method == "POST") as posted:
        await card.locator(TAKE).click()
    assert (await posted.value).status == 409
    await expect(bob.locator("#flash")).to_contain_text("Carol")
    await expect(bob.locator("#flash")).to_contain_text("no longer available")
    await expect(card).to_have_attribute("data-status", "owned")
    await expect(card).to_have_attribute("data-owner", "Carol Chen")
    await expect(card.locator(".owner-name")).to_be_visible()
    await expect(card.locator(".owner-you")).to_be_hidden()
    await expect(card.locator(f"{TAKE}:visible")).to_have_count(0)
    await assert_no_page_load(bob, navigations)


async def test_stale_take_without_js_answers_409_page_with_the_sentence(
    demo_server: Server, browser: Browser
):
    bob = await board_as(browser, demo_server, "bob@example.com", js=False)
    card = await available_card(bob)
    task_id = await card.get_attribute("data-task-id")
    assert task_id

    await carol_takes(browser, demo_server, task_id)

    async with bob.expect_response(lambda r: r.request.method == "POST") as posted:
        await card.locator(TAKE).click()
    assert (await posted.value).status == 409
    await expect(bob.locator("#flash")).to_contain_text("Carol")
    await expect(bob.locator("#flash")).to_contain_text("no longer available")
    await expect(card).to_have_attribute("data-status", "owned")
    await expect(card).to_have_attribute("data-owner", "Carol Chen")


# --- roles ----------------------------------------------------------------------------


async def test_viewer_sees_no_action_buttons_on_any_card(demo_server: Server, browser: Browser):
    page = await board_as(browser, demo_server, "victor@example.com")
    await expect(page.locator("[data-task-id]").first).to_be_visible()
    assert await page.locator("form[data-action]").count() > 0  # in the markup, hidden by CSS
    await expect(page.locator("form[data-action]:visible")).to_have_count(0)
    await expect(page.locator("[data-task-id] button:visible")).to_have_count(0)


# --- grouping and filters live in the URL ---------------------------------------------


def group_by_link(page: Page, name: str) -> Locator:
    return page.locator("#board-filters .segmented").get_by_role("link", name=name, exact=True)


async def assert_showing_matches(page: Page) -> None:
    cards = await page.locator("[data-task-id]").count()
    total = await int_attr(page.locator("#sprint-header"), "data-total")
    showing = page.locator("#showing")
    await expect(showing).to_contain_text(f"Showing {cards} of {total}")
    await expect(showing).to_have_attribute("data-shown", str(cards))


async def test_grouping_and_status_filter_live_in_the_url(demo_server: Server, browser: Browser):
    page = await board_as(browser, demo_server, "bob@example.com")
    await assert_group_counts_match_cards(page)
    await assert_showing_matches(page)

    await (
        page.locator("#board-filters .segmented")
        .get_by_role("link", name="Status", exact=True)
        .click()
    )
    await expect(page).to_have_url(re.compile(r"[?&]group=status(&|$)"))
    await expect(page.locator("[data-group=available]")).to_be_visible()
    await expect(page.locator("#board")).to_have_attribute("data-group-by", "status")
    await assert_group_counts_match_cards(page)
    await assert_showing_matches(page)

    await page.locator("a.chip[data-value=owned]").click()
    await expect(page).to_have_url(re.compile(r"[?&]status=owned(&|$)"))
    await expect(page).to_have_url(re.compile(r"[?&]group=status(&|$)"))
    await expect(page.locator("a.chip[data-value=owned]")).to_have_attribute("aria-current", "true")
    cards = page.locator("[data-task-id]")
    await expect(cards.first).to_be_visible()
    await expect(page.locator("[data-task-id]:not([data-status=owned])")).to_have_count(0)
    assert await cards.count() == await chip_count(page, "owned")
    await assert_group_counts_match_cards(page)
    await assert_showing_matches(page)

    # A second chip adds to the filter; both stay in the URL.
    await page.locator("a.chip[data-value=inprogress]").click()
    await expect(page).to_have_url(re.compile(r"[?&]status=inprogress(&|$)"))
    await expect(page).to_have_url(re.compile(r"[?&]status=owned(&|$)"))
    await expect(page).to_have_url(re.compile(r"[?&]group=status(&|$)"))
    await expect(
        page.locator("[data-task-id]:not([data-status=owned]):not([data-status=inprogress])")
    ).to_have_count(0)
    await assert_group_counts_match_cards(page)
    await assert_showing_matches(page)

    # The URL alone carries the view: a fresh load shows the same.
    url = page.url
    await page.reload()
    await expect(page).to_have_url(url)
    await expect(page.locator("a.chip[data-value=owned]")).to_have_attribute("aria-current", "true")
    await expect(page.locator("a.chip[data-value=inprogress]")).to_have_attribute(
        "aria-current", "true"
    )
    await expect(group_by_link(page, "Status")).to_have_attribute("aria-current", "true")
    await assert_showing_matches(page)


# --- long unbroken words --------------------------------------------------------------------

LONG_WORD = "Supercalifragilistic" * 10  # 200 characters, not one space
SIDEWAYS_JS = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


async def add_long_words(database_url: str) -> tuple[int, int]:
    """A story and a task whose every text is one long word: (sprint id, task id)."""
    db = Database(database_url)
    try:

        async def add(session: Any) -> tuple[int, int]:
            org = await find_org(session, "acme")
            alice = await find_user_by_email(session, "alice@example.com")
            assert alice is not None
            sprint = await session.scalar(
                select(Sprint).where(Sprint.org_id == org.id, Sprint.status == "active")
            )
            story = await create_story(
                session,
                org_id=org.id,
                sprint=sprint,
                fields=StoryFields(
                    title=LONG_WORD,
                    description=LONG_WORD * 3,
                    points=3,
                    criteria=[CriterionFields(LONG_WORD, LONG_WORD, LONG_WORD)],
                ),
                actor=alice,
                role=Role.OWNER,
            )
            task, _event = await create_task(
                session,
                story=story,
                fields=TaskFields(title=LONG_WORD, description=LONG_WORD * 5, ac_refs=["AC1"]),
                actor=alice,
                role=Role.OWNER,
            )
            return sprint.id, task.id

        return await db.write(add)
    finally:
        await db.close()


@pytest.mark.parametrize("width", [1280, 390])
async def test_long_unbroken_words_never_make_a_page_scroll_sideways(
    demo_server: Server, browser: Browser, database_url: str, width: int
):
    sprint_id, task_id = await add_long_words(database_url)
    context = await browser.new_context(viewport={"width": width, "height": 900})
    context.set_default_timeout(10_000)
    page = await sign_in(context, demo_server, "alice@example.com")
    for path in (
        f"/o/acme/sprints/{sprint_id}",
        f"/o/acme/sprints/{sprint_id}?group=status",
        f"/o/acme/tasks/{task_id}",
        f"/o/acme/tasks/{task_id}/edit",
    ):
        await page.goto(demo_server.url + path)
        await expect(page.locator("main")).to_contain_text(LONG_WORD[:40])
        assert await page.evaluate(SIDEWAYS_JS) <= 0, f"{path} scrolls sideways at {width} px"
    await context.close()
