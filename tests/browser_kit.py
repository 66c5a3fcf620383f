"""What the browser tests share: Debian's Chromium, sign-in, the action buttons."""

from __future__ import annotations

import re

from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.server import Server

# Debian's package; Playwright never downloads a browser here.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
BOARD_URL = re.compile(r"/o/[a-z0-9-]+/sprints/\d+(\?.*)?$")
# A task's actions, by the button inside each action's form.
TAKE, START, COMPLETE, RELEASE = (
    "form[data-action=take] button",
    "form[data-action=start] button",
    "form[data-action=complete] button",
    "form[data-action=release] button",
)


async def new_context(browser: Browser, *, js: bool = True) -> BrowserContext:
    context = await browser.new_context(java_script_enabled=js)
    context.set_default_timeout(10_000)
    return context


async def sign_in(context: BrowserContext, server: Server, email: str) -> Page:
    """Sign in through the development form and land on the board."""
    page = await context.new_page()
    await page.goto(f"{server.url}/login")
    form = page.locator("form[action$='/login/dev']")
    await form.locator("[name=email]").fill(email)
    await form.locator("button[type=submit]").click()
    await expect(page).to_have_url(BOARD_URL)
    await expect(page.locator("#sprint-header")).to_be_visible()
    return page


async def mark_page(page: Page) -> list[str]:
    """Set a marker a page load would wipe, and record main-frame navigations."""
    await page.evaluate("window.__marker = 1")
    navigations: list[str] = []
    page.on("framenavigated", lambda f: navigations.append(f.url) if f == page.main_frame else None)
    return navigations


async def assert_no_page_load(page: Page, navigations: list[str]) -> None:
    assert await page.evaluate("window.__marker") == 1
    assert navigations == []
