"""The live board in a real browser: changes by others arrive over the stream.

Headless Chromium (Playwright) against a real Hypercorn process on the demo data
(`demo_server`). Changes "by someone else" go through the JSON API with a token (or,
while the server is down, straight into the database through the life cycle). A page
has taken in a burst of changes once `#board[data-event-id]` reaches the newest event
id of its organization; only Playwright's auto-waiting expectations wait.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import Browser, Locator, Page, Response, expect

from app.models import Membership, Role
from app.tasks.lifecycle import Action
from tests.browser_kit import (
    COMPLETE,
    TAKE,
    Others,
    assert_no_page_load,
    expect_live,
    int_attr,
    live_board,
    mark_page,
    new_context,
    open_page,
    settled,
    sign_in,
    snapshot,
)
from tests.server import Server, start_server

pytestmark = pytest.mark.browser

CARDS_JS = """() => [...document.querySelectorAll('.card[data-task-id]')].map((c) =>
  [c.id, c.getAttribute('data-status'), c.getAttribute('data-owner-id'),
   c.parentElement.closest('[data-group]').getAttribute('data-group')])"""

FOCUSED_JS = """() => {
  const a = document.activeElement;
  const form = a && a.closest('form[data-action]');
  const card = a && a.closest('.card');
  return [a ? a.tagName : null, form ? form.getAttribute('data-action') : null,
          card ? card.id : null];
}"""


def chip(page: Page, value: str) -> Locator:
    return page.locator(f".chip[data-value={value}] .chip-count")


# --- 1. two people on one board ------------------------------------------------------------


@pytest.mark.both_databases
async def test_a_take_by_bob_reaches_alices_open_board_in_place_with_counts_and_a_toast(
    demo_server: Server, browser: Browser, others: Others
):
    alice = await live_board(browser, demo_server, "alice@example.com", "?group=status")
    bob = await live_board(browser, demo_server, "bob@example.com")
    header = alice.locator("#sprint-header")
    done, total = await int_attr(header, "data-done"), await int_attr(header, "data-total")
    groups = {
        s: await int_attr(alice.locator(f"[data-group={s}]"), "data-count")
        for s in ("available", "owned", "completed")
    }
    chips = {s: await int_attr(chip(alice, s), "data-count") for s in ("available", "owned")}
    navigations = await mark_page(alice)

    cards = bob.locator("[data-task-id][data-status=available]").filter(
        has=bob.locator(f"{TAKE}:visible")
    )
    await expect(cards.first).to_be_visible()
    task_id = await cards.first.get_attribute("data-task-id")
    title = (await bob.locator(f"#task-{task_id} .card-title").inner_text()).strip()
    await bob.locator(f"#task-{task_id}").locator(TAKE).click()

    card = alice.locator(f"#task-{task_id}")
    await expect(card).to_have_attribute("data-status", "owned")
    await expect(card).to_have_attribute("data-owner", "Bob Baker")
    await expect(alice.locator(f"[data-group=owned] #task-{task_id}")).to_be_visible()
    await expect(alice.locator("[data-group=available]")).to_have_attribute(
        "data-count", str(groups["available"] - 1)
    )
    await expect(alice.locator("[data-group=owned]")).to_have_attribute(
        "data-count", str(groups["owned"] + 1)
    )
    await expect(chip(alice, "available")).to_have_attribute(
        "data-count", str(chips["available"] - 1)
    )
    await expect(chip(alice, "owned")).to_have_attribute("data-count", str(chips["owned"] + 1))
    toasts = alice.locator("#toasts")
    await expect(toasts).to_have_attribute("role", "status")
    await expect(toasts).to_have_attribute("aria-live", "polite")
    await expect(toasts.locator(".toast")).to_have_count(1)
    await expect(toasts.locator(".toast").first).to_contain_text(f"Bob took “{title}”")
    await expect(toasts.locator(".toast").first).to_be_visible()

    # Bob finishes it: alice's header and progress follow.
    await bob.locator(f"#task-{task_id}").locator(COMPLETE).click()
    await expect(card).to_have_attribute("data-status", "completed")
    await expect(alice.locator(f"[data-group=completed] #task-{task_id}")).to_be_visible()
    await expect(header).to_have_attribute("data-done", str(done + 1))
    await expect(header).to_have_attribute("data-total", str(total))
    await expect(header).to_have_attribute("data-progress", str(round(100 * (done + 1) / total)))
    await expect(alice.locator("[data-group=completed]")).to_have_attribute(
        "data-count", str(groups["completed"] + 1)
    )
    await expect(alice.locator("[data-group=owned]")).to_have_attribute(
        "data-count", str(groups["owned"])
    )
    await expect(chip(alice, "completed")).to_have_text(str(groups["completed"] + 1))
    await assert_no_page_load(alice, navigations)

    # Bob's own board took in both events from the stream, and toasted neither.
    newest = await others.newest()
    await settled(alice, newest)
    await settled(bob, newest)
    await expect(bob.locator("#toasts .toast:visible")).to_have_count(0)


# --- 2. the live board equals a reload -------------------------------------------------------


async def test_after_a_burst_of_changes_every_live_view_equals_a_fresh_load(
    demo_server: Server, browser: Browser, others: Others
):
    context = await new_context(browser)
    first = await sign_in(context, demo_server, "alice@example.com")
    base = first.url.split("?")[0]
    queries = ["", "?group=status", "?group=story&status=available", "?mine=1"]
    pages = {"": first}
    for query in queries[1:]:
        pages[query] = await open_page(context, base + query)
    for page in pages.values():
        await expect_live(page)

    tid = others.task_id
    toast_task, replay = (
        await tid("Toast for others' changes"),
        await tid("Replay from the event log"),
    )
    sse_task, keep = await tid("SSE endpoint with resume"), await tid("Keep filters in the URL")
    counts_task = await tid("Counts per group")
    story_id = (await others.task("Mine and available filters")).story_id

    await others.take("bob@example.com", toast_task)
    await others.start("bob@example.com", toast_task)
    await others.complete("carol@example.com", sse_task)
    await others.release("bob@example.com", replay)  # back to "up for grabs"
    await others.take("carol@example.com", keep)  # leaves alice's "available" view
    await others.complete("alice@example.com", counts_task)  # alice, from another device
    created = await others.call(
        "bob@example.com",
        "POST",
        f"/stories/{story_id}/tasks",
        body={"title": "Live-added task", "estimated_hours": 2},
    )
    newest = await others.newest()

    for query, page in pages.items():
        await settled(page, newest)
        await expect(page.locator(f"#task-{created['task_id']}")).to_have_count(
            0 if query == "?mine=1" else 1
        )
        live = await snapshot(page)
        fresh_page = await open_page(context, base + query)
        fresh = await snapshot(fresh_page)
        await fresh_page.close()
        assert live == fresh, f"live board at {query or '(default)'} differs from a reload"


# The page script decides per viewer whether a card passes the filters (live.js
# `matches`), a copy of the server's rule (BoardQuery.matches). One filter at a time:
# a change brings a card into the view and another takes one out; live equals reload.
FILTERS = ["?status=owned", "?status=owned&status=inprogress", "?mine=1", "?available=1"]


@pytest.mark.parametrize("query", FILTERS)
async def test_each_filter_places_live_changes_as_a_reload_would(
    demo_server: Server, browser: Browser, others: Others, query: str
):
    context = await new_context(browser)
    alice = await sign_in(context, demo_server, "alice@example.com")
    base = alice.url.split("?")[0]
    await alice.goto(base + query)
    await expect_live(alice)
    toast_task = await others.task_id("Toast for others' changes")  # available
    keep = await others.task_id("Keep filters in the URL")  # available
    replay = await others.task_id("Replay from the event log")  # bob holds it
    if query == "?available=1":
        # In: bob gives his task up. Out: carol takes an available one.
        await others.release("bob@example.com", replay)
        await others.take("carol@example.com", keep)
        entered, left = replay, keep
    elif query == "?status=owned":
        # In: alice takes one (owned). Out: alice starts one she owns (now in progress).
        await others.take("alice@example.com", toast_task)
        owned_by_alice = await others.task_id("Connection indicator")
        await others.start("alice@example.com", owned_by_alice)
        entered, left = toast_task, owned_by_alice
    elif query == "?status=owned&status=inprogress":
        # In: bob takes one. Out: carol completes the one she works on.
        await others.take("bob@example.com", toast_task)
        sse = await others.task_id("SSE endpoint with resume")
        await others.complete("carol@example.com", sse)
        entered, left = toast_task, sse
    else:  # ?mine=1
        # In: alice takes one. Out: alice gives one of hers up.
        await others.take("alice@example.com", toast_task)
        mine = await others.task_id("Connection indicator")
        await others.release("alice@example.com", mine)
        entered, left = toast_task, mine
    await settled(alice, await others.newest())
    await expect(alice.locator(f"#task-{entered}")).to_have_count(1)
    await expect(alice.locator(f"#task-{left}")).to_have_count(0)
    live = await snapshot(alice)
    fresh_page = await open_page(context, base + query)
    assert live == await snapshot(fresh_page), f"live board at {query} differs from a reload"


# --- 3. toasts -----------------------------------------------------------------------------


async def test_a_burst_by_one_person_folds_into_one_toast_that_goes_by_itself_or_on_dismiss(
    demo_server: Server, browser: Browser, others: Others
):
    alice = await live_board(browser, demo_server, "alice@example.com")
    toasts = alice.locator("#toasts .toast")
    task = await others.task_id("Accept invitations on first sign-in")

    await others.take("carol@example.com", task)
    await others.start("carol@example.com", task)
    await others.complete("carol@example.com", task)
    await settled(alice, await others.newest())

    await expect(toasts).to_have_count(1)
    await expect(toasts.first).to_be_visible()
    await expect(toasts.first).to_contain_text("Carol made 3 changes")
    await expect(toasts).to_have_count(0, timeout=10_000)  # gone by itself

    await others.release("carol@example.com", await others.task_id("Sign out everywhere"))
    await settled(alice, await others.newest())
    await expect(toasts).to_have_count(1)
    await expect(toasts.first).to_contain_text("Carol released “Sign out everywhere”")
    await toasts.first.get_by_role("button", name="Dismiss").click()
    # Well before it would have gone by itself (4 s).
    await expect(toasts).to_have_count(0, timeout=1_000)


# --- 4. connection indicator and tenancy ----------------------------------------------------


async def test_connection_says_live_and_another_organizations_board_sees_none_of_acmes_changes(
    demo_server: Server, browser: Browser, others: Others
):
    alice = await live_board(browser, demo_server, "alice@example.com")
    dave = await live_board(browser, demo_server, "dave@example.com")
    await expect(dave).to_have_url(re.compile(r"/o/globex/sprints/\d+"))
    # Bob belongs to both organizations from now on: his acme changes must still stay in acme.
    bob, globex = await others.user("bob@example.com"), await others.org_id("globex")

    async def join(session: Any) -> None:
        session.add(Membership(org_id=globex, user_id=bob.id, role=Role.MEMBER.value))

    await others.db.write(join)
    globex_before = await others.newest("globex")
    await settled(dave, globex_before)
    dave_cards = await dave.evaluate(CARDS_JS)

    acme_task = await others.task_id("Toast for others' changes")
    await others.take("bob@example.com", acme_task)
    await others.complete("bob@example.com", acme_task)
    await others.release("carol@example.com", await others.task_id("Sign out everywhere"))
    await settled(alice, await others.newest())
    await expect(alice.locator(f"#task-{acme_task}")).to_have_attribute("data-status", "completed")

    assert await dave.evaluate(CARDS_JS) == dave_cards
    await expect(dave.locator("#board")).to_have_attribute("data-event-id", str(globex_before))
    await expect(dave.locator("#toasts .toast")).to_have_count(0)
    await expect_live(dave)

    # A globex change does reach him (after the acme ones, had any leaked).
    globex_task = await others.task_id("Skip and resume the tour")
    await others.take("bob@example.com", globex_task, org="globex")
    await settled(dave, await others.newest("globex"))
    card = dave.locator(f"#task-{globex_task}")
    await expect(card).to_have_attribute("data-status", "owned")
    await expect(card).to_have_attribute("data-owner", "Bob Baker")
    await expect(dave.locator("#toasts .toast")).to_have_count(1)
    await expect(dave.locator("#toasts .toast")).to_contain_text(
        "Bob took “Skip and resume the tour”"
    )
    expected = [
        [dom_id, "owned", str(bob.id), group]
        if dom_id == f"task-{globex_task}"
        else [dom_id, status, owner, group]
        for dom_id, status, owner, group in dave_cards
    ]
    assert await dave.evaluate(CARDS_JS) == expected
    await expect(dave.locator(f"#task-{acme_task}")).to_have_count(0)


# --- 5. focus ------------------------------------------------------------------------------


async def test_keyboard_focus_on_my_card_survives_remote_changes(
    demo_server: Server, browser: Browser, others: Others
):
    alice = await live_board(browser, demo_server, "alice@example.com")
    mine = await others.task_id("Connection indicator")  # alice holds it (owned)
    card = alice.locator(f"#task-{mine}")
    await expect(card).to_have_attribute("data-owner", "Alice Archer")
    await card.locator(".card-title a").focus()
    await alice.keyboard.press("Tab")  # → Start
    await alice.keyboard.press("Tab")  # → Done
    done_button = card.locator(COMPLETE)
    await expect(done_button).to_be_focused()
    before = await alice.evaluate(FOCUSED_JS)
    assert before == ["BUTTON", "complete", f"task-{mine}"]

    # Bob changes another card of the same story.
    await others.take("bob@example.com", await others.task_id("Toast for others' changes"))
    await settled(alice, await others.newest())
    assert await alice.evaluate(FOCUSED_JS) == before
    await expect(done_button).to_be_focused()

    # Her own card changes elsewhere (another device): the new card gets the focus back.
    await others.start("alice@example.com", mine)
    await settled(alice, await others.newest())
    await expect(card).to_have_attribute("data-status", "inprogress")
    assert await alice.evaluate(FOCUSED_JS) == before
    await expect(done_button).to_be_focused()


# --- 6. the WebSocket transport ------------------------------------------------------------


async def test_the_websocket_transport_updates_the_board_live_too(
    demo_server: Server, browser: Browser, others: Others
):
    alice = await live_board(browser, demo_server, "alice@example.com", "?transport=ws")
    await expect(alice.locator("#board")).to_have_attribute("data-transport", "ws")
    errors = await collect_errors(alice)
    navigations = await mark_page(alice)
    task = await others.task_id("Mine and available filters")

    await others.take("bob@example.com", task)

    card = alice.locator(f"#task-{task}")
    await expect(card).to_have_attribute("data-status", "owned")
    await expect(card).to_have_attribute("data-owner", "Bob Baker")
    await expect(alice.locator("#toasts .toast")).to_contain_text(
        "Bob took “Mine and available filters”"
    )
    await settled(alice, await others.newest())
    await assert_no_page_load(alice, navigations)
    assert errors == []
    assert await alice.evaluate("window.__htmxErrors") == []


async def collect_errors(page: Page) -> list[str]:
    """Console errors, and htmx's error events (which it also logs), from now on."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    await page.evaluate(
        """() => {
          window.__htmxErrors = [];
          for (const name of ["htmx:oobErrorNoTarget", "htmx:swapError", "htmx:targetError"]) {
            document.body.addEventListener(name, (e) =>
              window.__htmxErrors.push(name + " " + (e.detail.target || "")));
          }
        }"""
    )
    return errors


# --- 6b. signed out while looking ----------------------------------------------------------


@pytest.mark.console_errors(
    "the stream is refused once signed out: the extension logs it (Chromium, a refused socket)"
)
@pytest.mark.parametrize("transport", ["sse", "ws"])
async def test_signing_out_everywhere_turns_an_open_board_to_signed_out(
    demo_server: Server, browser: Browser, transport: str
):
    query = "?transport=ws" if transport == "ws" else ""
    alice = await live_board(browser, demo_server, "alice@example.com", query)
    elsewhere = await sign_in(await new_context(browser), demo_server, "alice@example.com")
    await elsewhere.goto(f"{demo_server.url}/settings/tokens")
    await elsewhere.get_by_role("button", name="Sign out everywhere").click()
    await expect(elsewhere).to_have_url(re.compile(r"/login"))

    connection = alice.locator("#connection")
    await expect(connection).to_have_attribute("data-state", "signed-out")
    await expect(connection.locator(".connection-text")).to_have_text("Signed out")
    link = connection.locator("a.connection-signin")
    await expect(link).to_be_visible()
    await expect(link).to_have_attribute("href", re.compile(r"^/login\?next=/o/acme/sprints/"))
    if transport == "sse":
        # The extension reconnects from this attribute: gone, it stops trying.
        await expect(alice.locator("#board")).not_to_have_attribute("sse-connect", re.compile("."))
    await link.click()
    await expect(alice).to_have_url(re.compile(r"/login\?next="))


# --- 7. resume after a server restart -------------------------------------------------------


@pytest.mark.console_errors("the server is stopped on purpose: each failed reconnect is logged")
async def test_after_a_server_restart_the_board_replays_what_it_missed_and_is_live_again(
    demo_server: Server, browser: Browser, others: Others, database_url: str
):
    alice = await live_board(browser, demo_server, "alice@example.com")
    navigations = await mark_page(alice)
    connection = alice.locator("#connection")
    toast_task = await others.task_id("Toast for others' changes")
    sse_task = await others.task_id("SSE endpoint with resume")
    streams: list[Response] = []
    alice.on("response", lambda r: streams.append(r) if "/events" in r.url else None)

    demo_server.stop()
    await expect(connection).to_have_attribute("data-state", re.compile("reconnecting|offline"))

    await others.perform("bob@example.com", "Toast for others' changes", Action.TAKE)
    await others.perform("bob@example.com", "Toast for others' changes", Action.START)
    await others.perform("carol@example.com", "SSE endpoint with resume", Action.COMPLETE)
    newest = await others.newest()

    server = start_server(database_url, port=demo_server.port)
    try:
        # The client backs off while the server is away; allow for its next attempt.
        await expect_live(alice, within_ms=30_000)
        await settled(alice, newest, within_ms=30_000)
        # Chromium asks for gzip, as every browser does: it resumed a compressed stream.
        encodings = [(await r.all_headers()).get("content-encoding") for r in streams]
        assert encodings and set(encodings) == {"gzip"}, encodings
        toast_card = alice.locator(f"#task-{toast_task}")
        await expect(toast_card).to_have_attribute("data-status", "inprogress")
        await expect(toast_card).to_have_attribute("data-owner", "Bob Baker")
        await expect(alice.locator(f"#task-{sse_task}")).to_have_attribute(
            "data-status", "completed"
        )
        await assert_no_page_load(alice, navigations)
        live = await snapshot(alice)
        await alice.reload()
        await expect(alice.locator("#sprint-header")).to_be_visible()
        assert live == await snapshot(alice)
    finally:
        server.stop()
