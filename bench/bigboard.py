"""`python -m bench.bigboard`: what a big board costs, at 50, 500 and 2,000 tasks.

For each size, a SQLite database gets `demo --big N` (Bigco's sprint of N tasks) and a
production server; then, each a median over rounds (min–max kept):

- the board page: the server's CPU per page (its process's CPU time across requests,
  once its cards have been rendered; the first page after a start, which renders them,
  apart), and its HTML bytes, in both groupings;
- in Chromium (Debian's, driven by Playwright): DOM elements, and the time from
  navigation until the page is interactive (loaded, its scripts run, its stream live);
- my own take, status view: until the card shows in Owned, and until the page has
  settled (the answer swapped in and a frame painted); story view: until settled;
- someone else's take (through the API): from the request until the card changed on
  the page (p95 over the changes);
- the API take itself;
- the bytes of one event's message on the stream, for a take and for a complete.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvloop
from playwright.async_api import Browser, Page, async_playwright
from quart import Quart
from sqlalchemy import select

from app import migrate
from app.auth import sessions
from app.auth.accounts import create_token
from app.db import Database
from app.demo import BIG_SLUG, load_demo
from app.models import Organization, Sprint, Task, User
from app.web import SCRIPT_COOKIE
from bench import procs, runner
from bench.stats import percentile

SIZES = (50, 500, 2_000)
PAGES_PER_SAMPLE = 5
CHROMIUM = "/usr/bin/chromium"
SECRET = "benchmark-secret-key-not-for-production"  # runner.project's
COOKIE = "sprintboard_session"  # over http://, as the benchmark's server is
ME, TEAMMATE = "mia@example.com", "max@example.com"
# Interactive: the page loaded, its scripts run, and its stream said "live".
WATCH_LIVE = """
window.__live = null;
new MutationObserver(() => {
  const c = document.getElementById('connection');
  if (c && c.getAttribute('data-state') === 'live' && window.__live === null)
    window.__live = performance.now();
}).observe(document, {subtree: true, attributes: true, childList: true});
"""


@dataclass
class Figure:
    """A measured quantity: its samples, summarized as median (min–max)."""

    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")

    def show(self, unit: str, scale: float = 1.0, digits: int = 0) -> str:
        if not self.samples:
            return "–"
        low, high = min(self.samples) * scale, max(self.samples) * scale
        return f"{self.median * scale:,.{digits}f} {unit} ({low:,.{digits}f}–{high:,.{digits}f})"


@dataclass
class BoardResult:
    tasks: int
    page_cpu_ms: dict[str, Figure] = field(default_factory=dict)
    first_page_cpu_ms: dict[str, float] = field(default_factory=dict)  # its cards unseen
    html_bytes: dict[str, int] = field(default_factory=dict)
    dom: dict[str, int] = field(default_factory=dict)
    interactive_ms: dict[str, Figure] = field(default_factory=dict)
    own_shown_ms: Figure = field(default_factory=Figure)
    own_settled_ms: dict[str, Figure] = field(default_factory=dict)
    remote_ms: list[float] = field(default_factory=list)
    api_take_ms: Figure = field(default_factory=Figure)
    message_bytes: dict[str, int] = field(default_factory=dict)

    def rows(self) -> list[tuple[str, str]]:
        """The table's lines for this size."""
        out = []
        for view in ("story", "status"):
            out.append((f"board page, server CPU ({view})", self.page_cpu_ms[view].show("ms")))
        cold = self.first_page_cpu_ms
        out.append(
            (
                "first page after a start (cards rendered)",
                f"{cold.get('story', 0):.0f} ms (story), then {cold.get('status', 0):.0f} ms",
            )
        )
        for view in ("story", "status"):
            out.append((f"HTML ({view})", f"{self.html_bytes[view] / 1e6:.2f} MB"))
        for view in ("story", "status"):
            out.append((f"DOM elements ({view})", f"{self.dom[view]:,}"))
        for view in ("story", "status"):
            out.append((f"Chromium: interactive ({view})", self.interactive_ms[view].show("ms")))
        out.append(("own take, status view: card shown", self.own_shown_ms.show("ms")))
        for view in ("status", "story"):
            out.append((f"own take, {view} view: settled", self.own_settled_ms[view].show("ms")))
        remote = self.remote_ms
        out.append(
            (
                "someone else's change seen",
                f"median {statistics.median(remote):.0f} ms, p95 {percentile(remote, 0.95):.0f}"
                f", max {max(remote):.0f}"
                if remote
                else "–",
            )
        )
        out.append(("API take", self.api_take_ms.show("ms", digits=1)))
        for kind, size in self.message_bytes.items():
            out.append((f"event message, {kind}", f"{size:,} bytes"))
        return out

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rows"] = self.rows()
        return data


@dataclass
class Scene:
    """One size's database, and who acts in it."""

    database_url: str
    sprint_id: int
    cookie: str  # my session, signed as the server signs it
    my_id: int
    teammate_token: str
    my_token: str
    available: list[int]  # the sprint's tasks up for grabs, for the takes


async def prepare(work: Path, tasks: int) -> Scene:
    """A database holding Bigco with `tasks` tasks; sessions and tokens for its people."""
    url = f"sqlite+aiosqlite:///{work}/big-{tasks}.db"
    await asyncio.to_thread(migrate.upgrade, url)
    db = Database(url)
    try:
        await load_demo(db, big=tasks, progress=lambda _message: None)

        async def people(session):  # type: ignore[no-untyped-def]
            me = await session.scalar(select(User).where(User.email == ME))
            teammate = await session.scalar(select(User).where(User.email == TEAMMATE))
            org = await session.scalar(select(Organization).where(Organization.slug == BIG_SLUG))
            sprint = await session.scalar(select(Sprint).where(Sprint.org_id == org.id))
            available = await session.scalars(
                select(Task.id)
                .where(Task.sprint_id == sprint.id, Task.status == "available")
                .order_by(Task.id)
            )
            return (
                sprint.id,
                await sessions.begin(session, me),
                me.id,
                await create_token(session, user=teammate, name="bench"),
                await create_token(session, user=me, name="bench"),
                list(available),
            )

        sprint_id, key, my_id, teammate_token, my_token, available = await db.write(people)
    finally:
        await db.close()
    signer = Quart(__name__)
    signer.secret_key = SECRET
    serializer = signer.session_interface.get_signing_serializer(signer)  # type: ignore[attr-defined]
    assert serializer is not None  # (it has a secret key)
    cookie = serializer.dumps({"sid": key, "_permanent": True})
    return Scene(url, sprint_id, cookie, my_id, teammate_token, my_token, available)


def board_url(server: procs.Server, scene: Scene, view: str) -> str:
    query = "?group=status" if view == "status" else ""
    return f"{server.base}/o/{BIG_SLUG}/sprints/{scene.sprint_id}{query}"


async def page_cost(server: procs.Server, scene: Scene, result: BoardResult, rounds: int) -> None:
    """The server's CPU per board page, and the page's size."""
    cookies = {COOKIE: scene.cookie, SCRIPT_COOKIE: "1"}
    async with httpx.AsyncClient(cookies=cookies, timeout=60) as client:
        for view in ("story", "status"):
            url = board_url(server, scene, view)
            before = server.cpu()
            first = await client.get(url)  # cold: the cards are rendered once, then kept
            assert first.status_code == 200, first.status_code
            result.first_page_cpu_ms[view] = (server.cpu() - before) * 1000
            figure = result.page_cpu_ms.setdefault(view, Figure())
            for _ in range(rounds):
                # (The kernel counts CPU time in 10 ms ticks: a sample is a batch's mean.)
                before = server.cpu()
                for _ in range(PAGES_PER_SAMPLE):
                    reply = await client.get(url)
                figure.samples.append((server.cpu() - before) * 1000 / PAGES_PER_SAMPLE)
                result.html_bytes[view] = len(reply.content)


async def open_board(browser: Browser, server: procs.Server, scene: Scene, view: str) -> Page:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    await context.add_cookies(
        [
            {"name": COOKIE, "value": scene.cookie, "url": server.base},
            {"name": SCRIPT_COOKIE, "value": "1", "url": server.base},
        ]
    )
    await context.add_init_script(WATCH_LIVE)
    page = await context.new_page()
    await page.goto(board_url(server, scene, view))
    await page.wait_for_function("window.__live !== null", timeout=60_000)
    return page


async def browser_cost(
    browser: Browser, server: procs.Server, scene: Scene, result: BoardResult, rounds: int
) -> None:
    """DOM elements and time to interactive, in both groupings."""
    for view in ("story", "status"):
        figure = result.interactive_ms.setdefault(view, Figure())
        for _ in range(rounds + 1):
            page = await open_board(browser, server, scene, view)
            timing = await page.evaluate(
                """() => ({live: window.__live,
                           load: performance.getEntriesByType('navigation')[0].loadEventEnd,
                           dom: document.getElementsByTagName('*').length})"""
            )
            figure.samples.append(max(timing["live"], timing["load"]))
            result.dom[view] = timing["dom"]
            await page.context.close()
        figure.samples.pop(0)  # the first opening warms the server's caches


# My take, timed in the page: from the click until the card is in its new place, and
# until the answer has settled and a frame has been painted after it.
OWN_TAKE = """async ([taskId, view]) => {
  const card = () => document.getElementById('task-' + taskId);
  const started = performance.now();
  let shown = null;
  const seen = new Promise((resolve) => {
    const check = () => {
      const c = card();
      const placed = c && c.getAttribute('data-status') === 'owned'
        && (view !== 'status' || c.closest('[data-group="owned"]'));
      if (placed && shown === null) { shown = performance.now() - started; resolve(); }
    };
    new MutationObserver(check).observe(document.getElementById('board-groups'),
      {subtree: true, childList: true, attributes: true, attributeFilter: ['data-status']});
  });
  window.Sprintboard.controls(card());
  const form = card().querySelector('form[data-action="take"]');
  // Settled: this take's own answer swapped in (live.js places its card then), and a
  // frame painted after it.
  const settled = new Promise((resolve) => form.addEventListener('htmx:afterSettle',
    () => requestAnimationFrame(() => setTimeout(resolve, 0)), {once: true}));
  form.querySelector('button').click();
  await seen; await settled;
  return [shown, performance.now() - started];
}"""


async def own_actions(
    browser: Browser, server: procs.Server, scene: Scene, result: BoardResult, tasks: list[int]
) -> None:
    """My takes, in the status view and the story view (each task then given back)."""
    half = len(tasks) // 2
    for view, batch in (("status", tasks[:half]), ("story", tasks[half:])):
        page = await open_board(browser, server, scene, view)
        settled = result.own_settled_ms.setdefault(view, Figure())
        for task in batch:
            await page.locator(f"#task-{task}").scroll_into_view_if_needed()
            shown, done = await asyncio.wait_for(page.evaluate(OWN_TAKE, [task, view]), 30)
            if view == "status":
                result.own_shown_ms.samples.append(shown)
            settled.samples.append(done)
        await page.context.close()


# Someone else's change, seen: the time (this machine's clock) the card changed.
WATCH_CARD = """([taskId, status]) => new Promise((resolve) => {
  const done = () => {
    const c = document.getElementById('task-' + taskId);
    if (c && c.getAttribute('data-status') === status) { resolve(Date.now()); return true; }
    return false;
  };
  if (done()) return;
  const observer = new MutationObserver(() => { if (done()) observer.disconnect(); });
  observer.observe(document.getElementById('board-groups'),
    {subtree: true, childList: true, attributes: true});
})"""


async def remote_changes(
    browser: Browser, server: procs.Server, scene: Scene, result: BoardResult, tasks: list[int]
) -> None:
    """The teammate takes and gives back tasks through the API; my board follows."""
    page = await open_board(browser, server, scene, "status")
    headers = {"Authorization": f"Bearer {scene.teammate_token}"}
    async with httpx.AsyncClient(base_url=server.base, headers=headers, timeout=30) as api:
        for task in tasks:
            for method, status in (("PUT", "owned"), ("DELETE", "available")):
                watching = asyncio.ensure_future(page.evaluate(WATCH_CARD, [task, status]))
                await asyncio.sleep(0)  # (the watcher is installed before the change)
                await page.evaluate("() => 0")
                sent = time.time() * 1000
                started = time.perf_counter()
                reply = await api.request(method, f"/api/v1/tasks/{task}/ownership")
                if method == "PUT":
                    result.api_take_ms.samples.append((time.perf_counter() - started) * 1000)
                assert reply.status_code == 200, reply.text
                seen = await asyncio.wait_for(watching, 30)
                result.remote_ms.append(seen - sent)
    await page.context.close()


async def message_sizes(server: procs.Server, scene: Scene, result: BoardResult, task: int) -> None:
    """One event's message as a stream receives it, for a take and for a complete."""
    headers = {"Authorization": f"Bearer {scene.my_token}"}
    steps = (
        ("take", "PUT", "ownership", b"event: ownership_taken"),
        ("start", "POST", "work/start", b"event: status_changed"),
        ("complete", "POST", "work/complete", b"event: status_changed"),
    )
    async with (
        httpx.AsyncClient(base_url=server.base, headers=headers, timeout=30) as client,
        client.stream("GET", f"/o/{BIG_SLUG}/events?nocompress=1") as stream,
    ):
        chunks = stream.aiter_bytes()
        buffer = await anext(chunks)  # subscribed (`retry:` comes first)
        for kind, method, path, marker in steps:
            buffer = b""
            reply = await client.request(method, f"/api/v1/tasks/{task}/{path}")
            assert reply.status_code == 200, reply.text
            found = None
            while found is None:
                buffer += await anext(chunks)
                blocks = buffer.split(b"\n\n")
                found = next((b for b in blocks[:-1] if marker in b and b"id: " in b), None)
            result.message_bytes[kind] = len(found) + 2  # (and the blank line that ends it)


async def measure_size(
    work: Path, browser: Browser, tasks: int, rounds: int, changes: int
) -> BoardResult:
    scene = await prepare(work, tasks)
    result = BoardResult(tasks)
    spare = scene.available[: 3 * changes + 1]
    changes = min(changes, (len(spare) - 1) // 3)  # (a small board has few to spare)
    with runner.project(work, scene.database_url) as server:
        await page_cost(server, scene, result, rounds)
        await browser_cost(browser, server, scene, result, rounds)
        await own_actions(browser, server, scene, result, spare[: 2 * changes])
        await remote_changes(browser, server, scene, result, spare[2 * changes : 3 * changes])
        await message_sizes(server, scene, result, spare[-1])
        errors = server.errors_logged()
        assert not errors, "\n".join(errors[:20])
    return result


async def measure(
    work: Path, sizes: tuple[int, ...] = SIZES, rounds: int = 5, changes: int = 10
) -> list[BoardResult]:
    results = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            for tasks in sizes:
                result = await measure_size(work, browser, tasks, rounds, changes)
                show(result)
                results.append(result)
        finally:
            await browser.close()
    return results


def show(result: BoardResult) -> None:
    print(f"big board, {result.tasks:,} tasks:", flush=True)
    for name, value in result.rows():
        print(f"  {name:<42} {value}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bigboard", description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--changes", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sprintboard-bigboard-") as folder:
        uvloop.run(measure(Path(folder), tuple(args.sizes), args.rounds, args.changes))


if __name__ == "__main__":
    main()
