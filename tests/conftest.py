"""Fixtures: the real app on a real database whose schema the migrations built."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Response,
    async_playwright,
)
from quart import Quart
from quart.typing import TestClientProtocol

from app import create_app
from app.auth import sessions
from app.db import Database
from app.demo import load_demo
from app.migrate import upgrade
from app.models import User
from tests import pg
from tests.browser_kit import CHROMIUM, CHROMIUM_ARGS, Others
from tests.cycle_kit import Cycle
from tests.factories import Scene, build_scene
from tests.server import Server, running_server

CSRF = "test-csrf-token"


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per run; each test gets a copy."""
    path = tmp_path_factory.mktemp("schema") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


# `SPRINTBOARD_TEST_DATABASE=postgresql` runs the suite on PostgreSQL (make test does both).
ON_POSTGRES = os.environ.get("SPRINTBOARD_TEST_DATABASE", "sqlite") == "postgresql"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """On the PostgreSQL pass, run only the tests that use the test database, and of the
    browser tests only those marked `both_databases`.

    The others (parsers, the hub, the CLI's arguments, the life-cycle model and the fuzz
    run, which bring their own SQLite files) would do exactly what the SQLite pass did.
    What a person sees in the browser does not depend on the database behind the pages:
    every route, stream and write those tests use runs on PostgreSQL in the HTTP and
    server tests, so the browser tests run there only as a whole-stack check.
    """
    if not ON_POSTGRES:
        return
    same_either_way = pytest.mark.skip(
        reason="does not use the test database: the SQLite pass ran it"
    )
    seen_on_sqlite = pytest.mark.skip(
        reason="what the browser shows does not depend on the database: the SQLite pass ran it"
    )
    for item in items:
        if "database_url" not in getattr(item, "fixturenames", ()):
            item.add_marker(same_either_way)
        elif item.get_closest_marker("browser") and not item.get_closest_marker("both_databases"):
            item.add_marker(seen_on_sqlite)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database of its own, whatever the run's database (for
    the tests of several instances, which need one), dropped afterwards."""
    with pg.fresh_postgres_database() as url:
        upgrade(url)
        yield url


@pytest.fixture(scope="session")
def migrated_postgres() -> Iterator[str | None]:
    """A PostgreSQL database migrated to head once per run: the template of every test's."""
    if not ON_POSTGRES:
        yield None
        return
    name = f"sprintboard_template_{uuid.uuid4().hex[:10]}"
    upgrade(pg.create_database(name))
    try:
        yield name
    finally:
        pg.drop_database(name)


@pytest.fixture
def database_url(
    migrated_sqlite: Path, migrated_postgres: str | None, tmp_path: Path
) -> Iterator[str]:
    """A fresh database for one test, its schema built by the migrations."""
    if migrated_postgres is None:
        target = tmp_path / "sprintboard.db"
        shutil.copy(migrated_sqlite, target)
        yield f"sqlite+aiosqlite:///{target}"
        return
    name = f"sprintboard_test_{uuid.uuid4().hex[:12]}"
    url = pg.create_database(name, template=migrated_postgres)
    try:
        yield url
    finally:
        pg.drop_database(name)


def app_config(database_url: str, **extra: object) -> dict[str, object]:
    return {
        "DATABASE_URL": database_url,
        "ENV": "development",
        "SECRET_KEY": "test-secret-key",
        "OIDC_ISSUER": None,
        "OIDC_CLIENT_ID": None,
        "REDIS_URL": None,
        **extra,
    }


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[Quart]:
    """The real app, started (before_serving ran) on this test's database."""
    application = create_app(app_config(database_url))
    async with application.test_app():
        yield application


@pytest.fixture
def db(app: Quart) -> Database:
    return app.extensions["db"]  # type: ignore[no-any-return]


@pytest.fixture
async def scene(db: Database) -> Scene:
    """Two organizations, four people in acme, a sprint with stories and tasks."""
    return await build_scene(db)


@pytest.fixture
def client(app: Quart) -> TestClientProtocol:
    return app.test_client()


async def sign_in(client: TestClientProtocol, user: User) -> TestClientProtocol:
    """Give the test client a signed-in session (the form itself is tested separately)."""
    db: Database = client.app.extensions["db"]  # type: ignore[attr-defined]
    key = await db.write(lambda s: sessions.begin(s, user))
    async with client.session_transaction() as session:
        session["sid"] = key
        session["csrf"] = CSRF
    return client


@pytest.fixture
def sign_in_as(app: Quart):  # type: ignore[no-untyped-def]
    """`await sign_in_as(user)` → a fresh client signed in as that user."""

    async def make(user: User) -> TestClientProtocol:
        return await sign_in(app.test_client(), user)

    return make


@pytest.fixture
async def demo_server(database_url: str) -> AsyncIterator[Server]:
    """A real Hypercorn process on a database holding the demo data."""
    await load_demo_into(database_url)
    with running_server(database_url) as server:
        yield server


async def load_demo_into(database_url: str, *, big: int | None = None) -> None:
    """The demo data (with `big`, Bigco too: `demo --big`) in the database at the URL."""
    db = Database(database_url)
    try:
        await load_demo(db, big=big, progress=lambda _m: None)
    finally:
        await db.close()


@pytest.fixture
async def browser(request: pytest.FixtureRequest) -> AsyncIterator[Browser]:
    """Headless Chromium (Debian's), driven by Playwright. Every page it opens is
    watched: a console error or an uncaught exception on any of them fails the test
    (unless it is marked `console_errors`, with the reason: a server stopped on
    purpose makes the browser log its refused requests)."""
    errors: list[str] = []
    thrown: list[str] = []
    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        watch_console(chromium, errors, thrown)
        try:
            yield chromium
        finally:
            await chromium.close()
    if request.node.get_closest_marker("console_errors") is None:
        thrown += errors
    if thrown:  # (an uncaught exception, or an asset that did not load, always counts)
        pytest.fail("the browser logged errors:\n" + "\n".join(thrown[:10]), pytrace=False)


# The statuses of refusals a page shows in words (signed out, not allowed, gone,
# conflict, a bad field): Chromium notes each in the console.
REFUSAL_LOGGED = re.compile(
    r"Failed to load resource: the server responded with a status of (401|403|404|409|422) "
)


def watch_console(browser: Browser, errors: list[str], thrown: list[str]) -> None:
    """Collect the console errors of the pages `browser` opens into `errors`, and their
    uncaught exceptions and assets that failed to load into `thrown`."""
    make_context, make_page = browser.new_context, browser.new_page

    def watch(context: BrowserContext) -> BrowserContext:
        def logged(message: ConsoleMessage) -> None:
            # Chromium notes every 4xx answer in the console; a refusal is one, and the
            # page says it in words (what is checked is that nothing else goes wrong).
            if message.type == "error" and not REFUSAL_LOGGED.match(message.text):
                errors.append(f"{message.page.url if message.page else '?'}: {message.text}")

        def answered(response: Response) -> None:
            if "/static/" in response.url and response.status >= 400:
                thrown.append(f"{response.url}: {response.status}")

        context.on("console", logged)
        context.on("weberror", lambda error: thrown.append(f"uncaught: {error.error}"))
        context.on("response", answered)
        return context

    async def new_context(*args: Any, **kwargs: Any) -> BrowserContext:
        return watch(await make_context(*args, **kwargs))

    async def new_page(*args: Any, **kwargs: Any) -> Page:
        page = await make_page(*args, **kwargs)
        watch(page.context)
        return page

    browser.new_context = new_context  # type: ignore[method-assign]
    browser.new_page = new_page  # type: ignore[method-assign]


@pytest.fixture
async def others(demo_server: Server, database_url: str) -> AsyncIterator[Others]:
    async with others_on(demo_server, database_url) as people:
        yield people


@contextlib.asynccontextmanager
async def others_on(server: Server, database_url: str) -> AsyncIterator[Others]:
    """Changes by other people on `server`, and reads of its database."""
    db = Database(database_url)
    try:
        yield Others(server, db)
    finally:
        await db.close()


@pytest.fixture
async def cycle(db: Database, scene: Scene) -> Cycle:
    """The sprint cycle of acme (tests/cycle_kit.py), its factories' active sprint moved
    to review first: one sprint is active at a time."""
    c = Cycle(db, scene)
    await c.advance(scene.acme.sprint)
    return c
