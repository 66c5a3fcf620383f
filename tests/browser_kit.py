"""What the browser tests share: Debian's Chromium, sign-in, the action buttons, reading
a board the way a reload would, and other people making changes through the API."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, BrowserContext, Locator, Page, expect
from sqlalchemy import select

from app.auth.accounts import create_token
from app.db import Database
from app.models import Organization, Task, User
from app.tasks.lifecycle import Action, change_task
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
    # Tall enough that a whole status column fits: drags need both ends on screen.
    context = await browser.new_context(
        java_script_enabled=js, viewport={"width": 1280, "height": 1400}
    )
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


# What a reload would show, read off a page: groups and their cards in order, the
# header, the filter chips, "Showing X of Y", and which actions each card offers.
SNAPSHOT_JS = """() => {
  const visible = (el) => el.checkVisibility();
  const text = (el) => (el ? el.textContent.trim() : null);
  const groups = [...document.querySelectorAll('[data-group]')].map((g) => ({
    group: g.getAttribute('data-group'),
    count: g.getAttribute('data-count'),
    badge: text(g.querySelector('.group-head .count')),
    empty: !!g.querySelector('.cards > .group-empty'),
    cards: [...g.querySelectorAll('.cards > .card')].map((c) => ({
      id: c.id,
      status: c.getAttribute('data-status'),
      owner: c.getAttribute('data-owner-id'),
      ownerName: c.getAttribute('data-owner'),
      actions: [...c.querySelectorAll('form[data-action]')].filter(visible)
        .map((f) => f.getAttribute('data-action')),
    })),
  }));
  const h = document.getElementById('sprint-header');
  const showing = document.getElementById('showing');
  return {
    groups,
    header: ['data-progress', 'data-done', 'data-total', 'data-stories']
      .map((name) => [name, h.getAttribute(name)]),
    chips: [...document.querySelectorAll('.chip')].map((c) => [
      c.getAttribute('data-filter'), c.getAttribute('data-value'),
      text(c.querySelector('.chip-count')),
      c.querySelector('.chip-count').getAttribute('data-count'),
    ]),
    showing: [
      showing.getAttribute('data-shown'), showing.getAttribute('data-total'),
      text(showing.querySelector('[data-shown]')), text(showing.querySelector('[data-total]')),
    ],
  };
}"""


# --- the browser -------------------------------------------------------------------------


async def live_board(browser: Browser, server: Server, email: str, query: str = "") -> Page:
    """A signed-in board (at `query`), its stream open."""
    page = await sign_in(await new_context(browser), server, email)
    if query:
        await page.goto(page.url.split("?")[0] + query)
        await expect(page.locator("#sprint-header")).to_be_visible()
    await expect_live(page)
    return page


async def open_page(context: BrowserContext, url: str) -> Page:
    page = await context.new_page()
    await page.goto(url)
    await expect(page.locator("#sprint-header")).to_be_visible()
    return page


async def expect_live(page: Page, within_ms: float = 10_000) -> None:
    connection = page.locator("#connection")
    await expect(connection).to_have_attribute("data-state", "live", timeout=within_ms)
    await expect(connection).to_be_visible()
    await expect(connection.locator(".connection-text")).to_have_text("Live")


async def settled(page: Page, event_id: int, within_ms: float = 10_000) -> None:
    """Wait until the page has taken in every event up to `event_id`."""
    await expect(page.locator("#board")).to_have_attribute(
        "data-event-id", str(event_id), timeout=within_ms
    )


async def int_attr(locator: Locator, name: str) -> int:
    value = await locator.get_attribute(name)
    assert value is not None and value.isdigit(), f"{name}={value!r}"
    return int(value)


async def snapshot(page: Page) -> dict[str, Any]:
    return await page.evaluate(SNAPSHOT_JS)  # type: ignore[no-any-return]


# --- others, through the API and the database -------------------------------------------


@dataclass
class Others:
    """Changes made by other people: API calls with their tokens, reads of the log."""

    server: Server
    db: Database
    tokens: dict[str, str] = field(default_factory=dict)

    async def _one(self, query: Any, what: str) -> Any:
        async with self.db.read() as s:
            found = await s.scalar(query)
        assert found is not None, what
        return found

    async def user(self, email: str) -> User:
        return await self._one(select(User).where(User.email == email), email)  # type: ignore[no-any-return]

    async def token(self, email: str) -> str:
        if email not in self.tokens:
            user = await self.user(email)
            self.tokens[email] = await self.db.write(
                lambda s: create_token(s, user=user, name="live browser test")
            )
        return self.tokens[email]

    async def call(
        self, email: str, method: str, path: str, *, org: str = "acme", body: Any = None
    ) -> Any:
        headers = {"Authorization": f"Bearer {await self.token(email)}", "X-Organization-Id": org}
        async with httpx.AsyncClient(base_url=self.server.url, timeout=30) as client:
            response = await client.request(method, f"/api/v1{path}", headers=headers, json=body)
        assert response.is_success, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    async def take(self, email: str, task_id: int, org: str = "acme") -> None:
        await self.call(email, "PUT", f"/tasks/{task_id}/ownership", org=org)

    async def release(self, email: str, task_id: int) -> None:
        await self.call(email, "DELETE", f"/tasks/{task_id}/ownership")

    async def start(self, email: str, task_id: int) -> None:
        await self.call(email, "POST", f"/tasks/{task_id}/work/start")

    async def complete(self, email: str, task_id: int) -> None:
        await self.call(email, "POST", f"/tasks/{task_id}/work/complete")

    async def task(self, title: str) -> Task:
        return await self._one(select(Task).where(Task.title == title), title)  # type: ignore[no-any-return]

    async def task_id(self, title: str) -> int:
        return (await self.task(title)).id

    async def newest(self, slug: str = "acme") -> int:
        async with self.db.read() as s:
            value = await s.scalar(
                select(Organization.last_event_id).where(Organization.slug == slug)
            )
        return int(value or 0)

    async def org_id(self, slug: str) -> int:
        return int(await self._one(select(Organization.id).where(Organization.slug == slug), slug))

    async def perform(self, email: str, title: str, action: Action, slug: str = "acme") -> None:
        """A change straight through the life cycle (the server may be down)."""
        actor, task, org_id = (
            await self.user(email),
            await self.task(title),
            await self.org_id(slug),
        )
        await self.db.write(
            lambda s: change_task(s, actor=actor, org=org_id, task_id=task.id, action=action)
        )


# --- accessibility --------------------------------------------------------------------------

# axe-core from the npm registry (`make vendor`), injected by the tests only.
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
WCAG_A_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


async def axe_violations(page: Page, within: str | None = None) -> list[dict[str, Any]]:
    """axe-core's critical and serious WCAG 2.0/2.1 A and AA violations on the page (or
    inside `within`), each with its rule, impact and the first elements it names."""
    await page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = await page.evaluate(
        """async ([within, tags]) => {
          const context = within ? { include: [within] } : document;
          const result = await axe.run(context, { runOnly: { type: "tag", values: tags } });
          return result.violations
            .filter((v) => v.impact === "critical" || v.impact === "serious")
            .map((v) => ({ rule: v.id, impact: v.impact,
                           where: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }));
        }""",
        [within, WCAG_A_AA],
    )
    return found
