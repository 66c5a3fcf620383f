"""Working the board by hand and by keyboard, in Chromium: dragging cards between status
columns (mouse and touch), one-key shortcuts, j/k, the `?` list, the announcer, and a
second person seeing every change live.

The demo data, as bob (a member): "Accept invitations on first sign-in" and "Toast for
others' changes" are available; bob holds "Replay from the event log" (owned), "Write
the callback handler" (in progress) and "Write API tests" (done); carol holds "Sign out
everywhere" (owned).
"""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, Locator, Page, expect

from app.auth.membership import change_role
from app.models import Role
from tests.browser_kit import Others, live_board, new_context, settled, sign_in
from tests.server import Server

pytestmark = pytest.mark.browser

STATUS_VIEW = "?group=status"
TARGET_LABEL = {
    "available": "Available",
    "owned": "Owned",
    "inprogress": "In progress",
    "completed": "Done",
}


def card(page: Page, task_id: int) -> Locator:
    return page.locator(f"#task-{task_id}")


def column(page: Page, status: str) -> Locator:
    return page.locator(f"[data-drop-status={status}]")


async def drag(
    page: Page,
    task_id: int,
    status: str,
    *,
    release: bool = True,
    lifts: bool = True,
    steps: int = 12,
) -> None:
    """Press on the card (its status badge: not a button or a link), carry it over the
    column for `status`, and let go there (unless `release` is False). A card that
    `lifts` is carried on only once the drag has begun (SortableJS starts it a tick
    after the first moves), as a hand waits to feel the card come up. Fewer `steps`
    carry it faster."""
    await card(page, task_id).scroll_into_view_if_needed()
    grip = await card(page, task_id).locator(".status-badge").bounding_box()
    target = await column(page, status).locator(".cards").bounding_box()
    assert grip is not None and target is not None
    await page.mouse.move(grip["x"] + 4, grip["y"] + 4)
    await page.mouse.down()
    await page.mouse.move(grip["x"] + 30, grip["y"] + 30, steps=4)
    if lifts:
        await expect(page.locator("body.dragging")).to_have_count(1)
    await page.mouse.move(target["x"] + target["width"] / 2, target["y"] + 24, steps=steps)
    if release:
        await page.mouse.up()


def actions_sent(page: Page) -> list[str]:
    """Every task action the page posts from now on."""
    sent: list[str] = []
    page.on(
        "request",
        lambda r: sent.append(r.url) if r.method == "POST" and "/tasks/" in r.url else None,
    )
    return sent


async def expect_in_column(page: Page, task_id: int, status: str) -> None:
    await expect(column(page, status).locator(f"#task-{task_id}")).to_have_count(1)
    await expect(card(page, task_id)).to_have_attribute("data-status", status)


# --- dragging --------------------------------------------------------------------------------


async def test_every_legal_drag_does_what_its_button_does_and_others_see_it(
    demo_server: Server, browser: Browser, others: Others
):
    bob = await live_board(browser, demo_server, "bob@example.com", STATUS_VIEW)
    alice = await live_board(browser, demo_server, "alice@example.com", STATUS_VIEW)
    bob.on("dialog", lambda dialog: dialog.accept())  # giving up asks first
    invitations = await others.task_id("Accept invitations on first sign-in")
    replay = await others.task_id("Replay from the event log")
    callback = await others.task_id("Write the callback handler")
    moves = [
        (invitations, "owned", "You took “Accept invitations on first sign-in”"),
        (replay, "inprogress", "You started “Replay from the event log”"),
        (callback, "owned", "You paused “Write the callback handler”"),
        (callback, "completed", "You completed “Write the callback handler”"),
        (invitations, "available", "You released “Accept invitations on first sign-in”"),
    ]
    for task_id, status, said in moves:
        await drag(bob, task_id, status)
        await expect_in_column(bob, task_id, status)
        await expect(bob.locator("#announcer")).to_have_text(
            f"{said}; it is now in {TARGET_LABEL[status]}."
        )
        # Focus stays on the moved card, for whoever drags with a keyboard-driven pointer.
        await expect(card(bob, task_id)).to_be_focused()
        await expect_in_column(alice, task_id, status)  # live, on someone else's board
        # The next drag starts once bob's own board has taken in this change's echo too:
        # a card swapped between the press and the drag's start would drop the drag.
        await expect(bob.locator("#board")).to_have_attribute(
            "data-event-id", await alice.locator("#board").get_attribute("data-event-id")
        )
    await expect(alice.locator("#toasts .toast").first).to_contain_text("Bob")


async def test_a_quick_flick_counts_where_the_card_is_let_go(
    demo_server: Server, browser: Browser, others: Others
):
    """Let go over a column in the same instant the pointer arrives, before SortableJS's
    next emulated dragover (every 50 ms) has shown the card there."""
    bob = await live_board(browser, demo_server, "bob@example.com", STATUS_VIEW)
    bob.on("dialog", lambda dialog: dialog.accept())  # giving up asks first
    toast = await others.task_id("Toast for others' changes")
    for _ in range(3):  # one flick might still be caught by that 50 ms tick; three are not
        await drag(bob, toast, "owned", steps=1)
        await expect_in_column(bob, toast, "owned")
        await bob.keyboard.press("g")  # give it back, for the next flick
        await expect_in_column(bob, toast, "available")
        # Its own change's echo re-renders the card once more: wait for it, so that the
        # next drag does not grip a card about to be replaced.
        await settled(bob, await others.newest())


async def test_a_column_a_card_cannot_go_to_refuses_it_and_says_so_while_dragging(
    demo_server: Server, browser: Browser, others: Others
):
    bob = await live_board(browser, demo_server, "bob@example.com", STATUS_VIEW)
    sent = actions_sent(bob)
    toast = await others.task_id("Toast for others' changes")
    await drag(bob, toast, "completed", release=False)
    # While dragging: where it may go (its own column, Owned) and where it may not.
    for status, allowed in (
        ("available", "true"),
        ("owned", "true"),
        ("inprogress", "false"),
        ("completed", "false"),
    ):
        await expect(column(bob, status)).to_have_attribute("data-drop-allowed", allowed)
    cursor = await column(bob, "completed").evaluate("(el) => getComputedStyle(el).cursor")
    assert cursor == "not-allowed"
    await expect(column(bob, "completed").locator(f"#task-{toast}")).to_have_count(0)
    await bob.mouse.up()
    await expect_in_column(bob, toast, "available")
    await expect(column(bob, "completed")).not_to_have_attribute("data-drop-allowed", "false")
    assert sent == []


async def test_a_done_card_and_another_persons_card_do_not_move(
    demo_server: Server, browser: Browser, others: Others
):
    bob = await live_board(browser, demo_server, "bob@example.com", STATUS_VIEW)
    sent = actions_sent(bob)
    done = await others.task_id("Write API tests")  # bob's, completed
    carols = await others.task_id("Sign out everywhere")  # carol's, owned
    for task_id, status in ((done, "available"), (carols, "completed")):
        await drag(bob, task_id, status, release=False, lifts=False)
        await expect(bob.locator("body.dragging")).to_have_count(0)  # it did not lift
        await bob.mouse.up()
    await expect_in_column(bob, done, "completed")
    await expect_in_column(bob, carols, "owned")
    assert sent == []


async def test_a_viewer_moves_nothing(demo_server: Server, browser: Browser, others: Others):
    victor = await live_board(browser, demo_server, "victor@example.com", STATUS_VIEW)
    sent = actions_sent(victor)
    toast = await others.task_id("Toast for others' changes")
    await drag(victor, toast, "owned", release=False, lifts=False)
    await expect(victor.locator("body.dragging")).to_have_count(0)
    await victor.mouse.up()
    await expect_in_column(victor, toast, "available")
    assert sent == []


async def test_saying_no_to_giving_up_puts_the_card_back(
    demo_server: Server, browser: Browser, others: Others
):
    bob = await live_board(browser, demo_server, "bob@example.com", STATUS_VIEW)
    questions: list[str] = []

    async def decline(dialog):  # type: ignore[no-untyped-def]
        questions.append(dialog.message)
        await dialog.dismiss()

    bob.on("dialog", decline)
    sent = actions_sent(bob)
    replay = await others.task_id("Replay from the event log")
    await drag(bob, replay, "available")
    await expect_in_column(bob, replay, "owned")
    assert questions and questions[0].startswith("Give up “Replay from the event log”?")
    assert sent == []


@pytest.mark.console_errors(
    "a role change ends the stream to re-check it: htmx's SSE extension logs the cut"
)
async def test_a_drop_the_server_refuses_goes_back_with_the_sentence(
    demo_server: Server, browser: Browser, others: Others
):
    bob = await live_board(browser, demo_server, "bob@example.com", STATUS_VIEW)
    # Meanwhile an owner makes bob a viewer; his page does not know yet.
    bob_user, org_id = await others.user("bob@example.com"), await others.org_id("acme")
    await others.db.write(lambda s: change_role(s, org_id, bob_user.id, Role.VIEWER))
    toast = await others.task_id("Toast for others' changes")
    await drag(bob, toast, "owned")
    await expect(bob.locator("#flash .flash-error")).to_contain_text(
        "Viewers can follow the board but not change it."
    )
    await expect_in_column(bob, toast, "available")


async def test_a_remote_change_during_a_drag_neither_breaks_it_nor_is_lost(
    demo_server: Server, browser: Browser, others: Others
):
    bob = await live_board(browser, demo_server, "bob@example.com", STATUS_VIEW)
    sent = actions_sent(bob)
    invitations = await others.task_id("Accept invitations on first sign-in")
    toast = await others.task_id("Toast for others' changes")
    await drag(bob, invitations, "owned", release=False)
    # While bob holds it, carol takes that very card, and another one.
    await others.take("carol@example.com", invitations)
    await others.take("carol@example.com", toast)
    await expect(bob.locator("body.dragging")).to_have_count(1)  # still in bob's hand
    await bob.mouse.up()
    # The drop went out as a take, and was refused: carol was first.
    await expect(bob.locator("#flash .flash-error")).to_contain_text("Carol Chen took")
    assert len(sent) == 1 and sent[0].endswith(f"/tasks/{invitations}/take")
    # Both of carol's changes are on bob's board.
    for task_id in (invitations, toast):
        await expect_in_column(bob, task_id, "owned")
        await expect(card(bob, task_id)).to_have_attribute("data-owner", "Carol Chen")


async def test_on_a_phone_a_long_press_drags_and_a_swipe_scrolls(
    demo_server: Server, browser: Browser, others: Others
):
    context = await browser.new_context(
        viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True
    )
    context.set_default_timeout(10_000)
    bob = await sign_in(context, demo_server, "bob@example.com")
    await bob.goto(bob.url.split("?")[0] + STATUS_VIEW)
    await expect(bob.locator("#connection")).to_have_attribute("data-state", "live")
    keep = await others.task_id("Keep filters in the URL")  # the last available card
    touch = await context.new_cdp_session(bob)

    async def finger(kind: str, x: float = 0, y: float = 0) -> None:
        points = [] if kind == "touchEnd" else [{"x": x, "y": y}]
        await touch.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    # The columns are stacked: bring the card to the middle, Owned right below it (the
    # top of the screen is under the sticky bar).
    await card(bob, keep).evaluate("(el) => el.scrollIntoView({block: 'center'})")
    grip = await card(bob, keep).locator(".status-badge").bounding_box()
    owned = await column(bob, "owned").locator(".cards").bounding_box()
    assert grip and owned and owned["y"] + 40 < 844
    x, y = grip["x"] + 4, grip["y"] + 4

    # A long press, then a move: a drag.
    await finger("touchStart", x, y)
    # The press must last: the drag starts after 250 ms of holding still (no event to
    # wait for: the time is the gesture).
    await bob.wait_for_timeout(450)
    tx, ty = owned["x"] + owned["width"] / 2, owned["y"] + 30
    for step in range(1, 13):
        await finger("touchMove", x + (tx - x) * step / 12, y + (ty - y) * step / 12)
    await finger("touchEnd")
    await expect_in_column(bob, keep, "owned")
    await expect(card(bob, keep)).to_have_attribute("data-owner", "Bob Baker")

    # A quick swipe that starts on a card is a scroll, never a drag.
    other = await others.task_id("Mine and available filters")
    await card(bob, other).evaluate("(el) => el.scrollIntoView({block: 'center'})")
    grip = await card(bob, other).locator(".status-badge").bounding_box()
    assert grip
    x, y = grip["x"] + 4, grip["y"] + 4
    scrolled = await bob.evaluate("window.scrollY")
    await finger("touchStart", x, y)
    for step in range(1, 6):
        await finger("touchMove", x, y - step * 30)
    await finger("touchEnd")
    await expect(bob.locator("body.dragging")).to_have_count(0)
    await expect_in_column(bob, other, "available")
    assert await bob.evaluate("window.scrollY") != scrolled
    await context.close()


# --- keys ------------------------------------------------------------------------------------


async def focus_card(page: Page, task_id: int) -> None:
    await card(page, task_id).focus()
    await expect(card(page, task_id)).to_be_focused()


async def test_every_action_has_its_key_shown_and_told_to_assistive_technology(
    demo_server: Server, browser: Browser, others: Others
):
    bob = await live_board(browser, demo_server, "bob@example.com", STATUS_VIEW)
    replay = await others.task_id("Replay from the event log")
    await focus_card(bob, replay)
    for action, key in (("start", "s"), ("complete", "d"), ("release", "g")):
        button = card(bob, replay).locator(f"form[data-action={action}] button")
        await expect(button).to_have_attribute("aria-keyshortcuts", key)
        await expect(button.locator("kbd.key-hint")).to_be_visible()
        await expect(button.locator("kbd.key-hint")).to_have_text(key)
    toast = await others.task_id("Toast for others' changes")
    take = card(bob, toast).locator("form[data-action=take] button")
    await expect(take).to_have_attribute("aria-keyshortcuts", "t")
    await expect(take.locator("kbd.key-hint")).to_be_hidden()  # not the card in hand


async def test_every_shortcut_does_what_its_button_does_and_others_see_it(
    demo_server: Server, browser: Browser, others: Others
):
    bob = await live_board(browser, demo_server, "bob@example.com", STATUS_VIEW)
    alice = await live_board(browser, demo_server, "alice@example.com", STATUS_VIEW)
    bob.on("dialog", lambda dialog: dialog.accept())
    toast = await others.task_id("Toast for others' changes")
    steps = [
        ("t", "owned", "You took “Toast for others' changes”; it is now in Owned."),
        ("s", "inprogress", "You started “Toast for others' changes”; it is now in In progress."),
        ("p", "owned", "You paused “Toast for others' changes”; it is now in Owned."),
        ("g", "available", "You released “Toast for others' changes”; it is now in Available."),
        ("t", "owned", "You took “Toast for others' changes”; it is now in Owned."),
        ("d", "completed", "You completed “Toast for others' changes”; it is now in Done."),
    ]
    await focus_card(bob, toast)
    for key, status, said in steps:
        await bob.keyboard.press(key)
        await expect_in_column(bob, toast, status)
        await expect(bob.locator("#announcer")).to_have_text(said)
        await expect(card(bob, toast)).to_be_focused()  # still in hand for the next key
        await expect_in_column(alice, toast, status)
    # A done card offers nothing: its keys do nothing.
    sent = actions_sent(bob)
    for key in "tspdg":
        await bob.keyboard.press(key)
    await expect(card(bob, toast)).to_have_attribute("data-status", "completed")
    assert sent == []


async def test_j_and_k_go_from_card_to_card_in_reading_order(demo_server: Server, browser: Browser):
    bob = await live_board(browser, demo_server, "bob@example.com", STATUS_VIEW)
    order = await bob.evaluate(
        "() => [...document.querySelectorAll('main .card[data-task-id]')].map((c) => c.id)"
    )
    focused = "() => document.activeElement.id"
    await bob.keyboard.press("j")
    assert await bob.evaluate(focused) == order[0]
    for expected in order[1:4]:
        await bob.keyboard.press("j")
        assert await bob.evaluate(focused) == expected
    await bob.keyboard.press("k")
    assert await bob.evaluate(focused) == order[2]


async def test_question_mark_lists_every_shortcut_and_keys_wait_while_it_is_open(
    demo_server: Server, browser: Browser, others: Others
):
    bob = await live_board(browser, demo_server, "bob@example.com")
    dialog = bob.locator("dialog#shortcuts")
    await expect(dialog).to_be_hidden()
    await bob.keyboard.press("?")
    await expect(dialog).to_be_visible()
    keys = await dialog.locator("kbd").all_text_contents()
    assert {"j", "k", "t", "s", "p", "d", "g", "?", "Esc"} <= set(keys)
    sent = actions_sent(bob)
    # The dialog is open: keys are left to it (none is taken by the board).
    await bob.evaluate(
        """() => { window.__taken = [];
             window.addEventListener("keydown", (e) => window.__taken.push(e.defaultPrevented));
           }"""
    )
    for key in ("t", "j", "k"):
        await bob.keyboard.press(key)
    assert await bob.evaluate("window.__taken") == [False, False, False]
    await bob.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    assert sent == []
    # The same list from a button, for those who do not know the key.
    await bob.get_by_role("button", name="Keyboard shortcuts").click()
    await expect(dialog).to_be_visible()


async def test_keys_typed_into_a_field_are_just_typing(
    demo_server: Server, browser: Browser, others: Others
):
    bob = await live_board(browser, demo_server, "bob@example.com", STATUS_VIEW)
    toast = await others.task_id("Toast for others' changes")
    sent = actions_sent(bob)
    # A field inside the card itself, the hardest case (a search box, a comment later).
    await card(bob, toast).evaluate(
        "(el) => el.insertAdjacentHTML('beforeend', '<input id=typing aria-label=Typing>')"
    )
    field = bob.locator("#typing")
    await field.focus()
    await bob.keyboard.type("tj?k")
    await expect(field).to_have_value("tj?k")
    await expect(field).to_be_focused()
    await expect(bob.locator("dialog#shortcuts")).to_be_hidden()
    await expect(card(bob, toast)).to_have_attribute("data-status", "available")
    assert sent == []


async def test_without_javascript_the_status_view_is_columns_of_plain_forms(
    demo_server: Server, browser: Browser, others: Others
):
    page = await sign_in(await new_context(browser, js=False), demo_server, "bob@example.com")
    await page.goto(page.url.split("?")[0] + STATUS_VIEW)
    for status in ("available", "owned", "inprogress", "completed"):
        await expect(column(page, status)).to_be_visible()
    toast = await others.task_id("Toast for others' changes")
    await card(page, toast).locator("form[data-action=take] button").click()
    await expect(page).to_have_url(re.compile(r"group=status"))
    await expect_in_column(page, toast, "owned")
    await expect(page.locator("[data-open-shortcuts]")).to_be_hidden()


# --- signed out meanwhile ---------------------------------------------------------------------


@pytest.mark.console_errors(
    "the stream, refused once signed out, is logged by htmx's SSE extension"
)
async def test_after_the_session_ended_a_button_a_key_and_a_drag_say_so_and_change_nothing(
    demo_server: Server, browser: Browser, others: Others
):
    """Bob's board stays open while he signs out everywhere from another device. His
    next button, key and drag each say he is signed out, with the way to sign in and
    back to this board; the task stays as it was, and a dragged card goes home."""
    bob = await live_board(browser, demo_server, "bob@example.com", STATUS_VIEW)
    mine = await others.task_id("Replay from the event log")  # bob's, owned
    elsewhere = await sign_in(await new_context(browser), demo_server, "bob@example.com")
    await elsewhere.goto(f"{demo_server.url}/settings/tokens")
    await elsewhere.get_by_role("button", name="Sign out everywhere").click()
    await expect(bob.locator("#connection")).to_have_attribute("data-state", "signed-out")

    said = bob.locator("#flash [data-signed-out]")
    link = said.get_by_role("link", name="Sign in again")
    await card(bob, mine).locator("form[data-action=start] button").click()
    await expect(said).to_be_visible()
    await expect(link).to_have_attribute("href", "/login?next=/o/acme/sprints/1%3Fgroup%3Dstatus")
    await bob.evaluate("document.getElementById('flash').textContent = ''")
    await card(bob, mine).focus()
    await bob.keyboard.press("d")
    await expect(said).to_be_visible()
    await bob.evaluate("document.getElementById('flash').textContent = ''")
    await drag(bob, mine, "completed")
    await expect(said).to_be_visible()
    await expect_in_column(bob, mine, "owned")  # went home
    board = await others.call("alice@example.com", "GET", "/sprints/1/tasks")
    assert next(t for t in board["tasks"] if t["id"] == str(mine))["status"] == "owned"
