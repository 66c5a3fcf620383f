"""Sessions really end: after sign-out a copied cookie opens nothing, live streams close."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets

from app.db import Database
from tests.factories import Scene, build_scene
from tests.server import Server, running_server
from tests.sse_client import open_stream

pytestmark = pytest.mark.server


@pytest.fixture
async def server(database_url: str) -> AsyncIterator[tuple[Server, Scene]]:
    db = Database(database_url)
    try:
        scene = await build_scene(db)
    finally:
        await db.close()
    with running_server(database_url) as running:
        yield running, scene


async def sign_in(http: httpx.AsyncClient, email: str) -> str:
    """Development sign-in through the real form; returns the new session's CSRF token."""
    token = re.search(r'name="csrf_token" value="([^"]+)"', (await http.get("/login")).text)
    assert token
    assert (
        await http.post("/login/dev", data={"csrf_token": token.group(1), "email": email})
    ).status_code == 303
    fresh = re.search(
        r'name="csrf_token" value="([^"]+)"', (await http.get("/o/acme/sprints")).text
    )
    assert fresh
    return fresh.group(1)


def cookie_header(http: httpx.AsyncClient) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in http.cookies.items())}


@pytest.mark.parametrize("everywhere", [False, True])
async def test_a_cookie_copied_before_sign_out_opens_nothing_after(
    server: tuple[Server, Scene], everywhere: bool
):
    app, scene = server
    task = scene.acme.tasks[0]
    board = f"/o/acme/sprints/{scene.acme.sprint.id}"
    async with httpx.AsyncClient(base_url=app.url, timeout=20) as browser:
        csrf = await sign_in(browser, "bob@example.com")
        stolen = cookie_header(browser)
        async with httpx.AsyncClient(base_url=app.url, timeout=20) as thief:
            assert (await thief.get(board, headers=stolen)).status_code == 200
            async with open_stream(thief, "/o/acme/events", stolen) as stream:
                await stream.next()  # open and counted
                path = "/logout/everywhere" if everywhere else "/logout"
                out = await browser.post(path, data={"csrf_token": csrf})
                assert out.status_code == 303
                with pytest.raises(EOFError):  # the open stream is closed by the sign-out
                    while True:
                        await stream.next(wait=10)
            page = await thief.get(board, headers=stolen, follow_redirects=False)
            assert page.status_code == 302 and page.headers["location"].startswith("/login")
            action = await thief.post(
                f"/o/acme/tasks/{task.id}/take", data={"csrf_token": csrf}, headers=stolen
            )
            # Signed out: sent to sign in, and nothing taken.
            assert action.status_code == 302
            assert action.headers["location"].startswith("/login")
            async with httpx.AsyncClient(base_url=app.url, timeout=20) as alice:
                await sign_in(alice, "alice@example.com")
                card = (await alice.get(f"/o/acme/tasks/{task.id}")).text
                assert 'data-status="available"' in card
            assert (await thief.get("/o/acme/events", headers=stolen)).status_code == 401
            assert (await thief.get("/api/v1/users/me", headers=stolen)).status_code == 401
        ws_url = app.url.replace("http", "ws") + "/o/acme/ws"
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(ws_url, additional_headers=stolen, origin=app.url):
                pass
        assert refused.value.response.status_code == 401
    # The task was never taken by the replayed cookie.
    async with httpx.AsyncClient(base_url=app.url) as fresh:
        await sign_in(fresh, "carol@example.com")
        current = (await fresh.get(f"/api/v1/tasks/{task.id}")).json()
    assert current["status"] == "available"


async def test_signing_out_one_browser_leaves_the_others_signed_in(server: tuple[Server, Scene]):
    app, _scene = server
    async with (
        httpx.AsyncClient(base_url=app.url) as laptop,
        httpx.AsyncClient(base_url=app.url) as phone,
    ):
        csrf = await sign_in(laptop, "bob@example.com")
        await sign_in(phone, "bob@example.com")
        assert (await laptop.post("/logout", data={"csrf_token": csrf})).status_code == 303
        assert (await laptop.get("/api/v1/users/me")).status_code == 401
        assert (await phone.get("/api/v1/users/me")).status_code == 200
