"""The live stream through a real Hypercorn process: ids, resume, reset, restarts, tenancy."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import websockets
from sqlalchemy import select

from app.db import Database
from app.models import Organization, Role, Sprint, SprintStatus
from app.tasks.editing import StoryFields, TaskFields, create_story, create_task
from app.tasks.lifecycle import Action
from tests.factories import Scene, act, build_scene, token_for
from tests.server import Server, start_server
from tests.sse_client import open_stream

pytestmark = pytest.mark.server

WINDOW = 40
SERVER_ENV = {
    "SPRINTBOARD_REPLAY_WINDOW": str(WINDOW),
    "SPRINTBOARD_HEARTBEAT_SECONDS": "0.5",
    "MAX_STREAMS_PER_USER": "3",
}


@dataclass
class Live:
    db: Database
    scene: Scene
    server: Server
    database_url: str
    tokens: dict[str, str]

    def auth(self, who: str = "bob") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def restart(self) -> None:
        self.server.stop()
        self.server = start_server(self.database_url, **SERVER_ENV)

    async def newest(self, slug: str = "acme") -> int:
        async with self.db.read() as s:
            value = await s.scalar(
                select(Organization.last_event_id).where(Organization.slug == slug)
            )
            return int(value or 0)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.server.url, timeout=30)

    async def changes(self, n: int, who: str = "bob", task_index: int = 0) -> list[str]:
        """n changes through the API (take, release, take, …); their event types."""
        task = self.scene.acme.tasks[task_index]
        types = []
        async with self.client() as http:
            for i in range(n):
                if i % 2 == 0:
                    r = await http.put(f"/api/v1/tasks/{task.id}/ownership", headers=self.auth(who))
                    types.append("ownership_taken")
                else:
                    r = await http.delete(
                        f"/api/v1/tasks/{task.id}/ownership", headers=self.auth(who)
                    )
                    types.append("ownership_released")
                assert r.status_code == 200, r.text
        return types


@pytest.fixture
async def live(database_url: str) -> AsyncIterator[Live]:
    db = Database(database_url)
    scene = await build_scene(db)
    tokens = {who: await token_for(db, scene.people[who]) for who in ("bob", "carol", "dave")}
    server = start_server(database_url, **SERVER_ENV)
    state = Live(db, scene, server, database_url, tokens)
    try:
        yield state
    finally:
        state.server.stop()
        await db.close()


def stream_url(live: Live, query: str = "") -> str:
    return f"/o/acme/events?sprint={live.scene.acme.sprint.id}{query}"


async def test_the_stream_is_well_formed_and_keeps_the_line_alive(live: Live):
    async with live.client() as http, open_stream(http, stream_url(live), live.auth()) as stream:
        response = stream.response
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        first = await stream.next()
        assert first.kind == "retry" and first.retry and first.retry > 0
        assert (await stream.next(wait=5)).kind == "comment"


async def test_changes_arrive_live_in_order_one_message_each(live: Live):
    start = await live.newest()
    async with live.client() as http, open_stream(http, stream_url(live), live.auth()) as stream:
        await stream.next()  # retry
        types = await live.changes(5)
        got = [await stream.next_event() for _ in types]
    assert [m.id for m in got] == list(range(start + 1, start + 6))
    assert [m.event for m in got] == types
    assert all("data-live-card" in m.data and "data-live-counts" in m.data for m in got)
    # The header rides along with a change that moves its figures (a completion), and
    # with the day's first message; with no other.
    completes = ['data-status="completed"' in m.data for m in got]
    headers = ['id="sprint-header"' in m.data for m in got]
    assert all(header for header, completed in zip(headers, completes, strict=True) if completed)
    assert headers[1:] == completes[1:]


async def test_resume_gets_exactly_the_missed_events(live: Live):
    cursor = await live.newest()
    async with live.client() as http, open_stream(http, stream_url(live), live.auth()) as stream:
        await stream.next()
    types = await live.changes(25)
    expected = list(range(cursor + 1, cursor + 26))
    async with live.client() as http:
        async with open_stream(
            http, stream_url(live), {**live.auth(), "Last-Event-ID": str(cursor)}
        ) as s:
            by_header = await s.events_until_quiet()
        async with open_stream(http, stream_url(live, f"&after={cursor}"), live.auth()) as s:
            by_query = await s.events_until_quiet()
        async with open_stream(
            http, stream_url(live, "&after=0"), {**live.auth(), "Last-Event-ID": str(cursor + 20)}
        ) as s:
            header_wins = await s.events_until_quiet()
    assert [m.id for m in by_header] == expected and [m.event for m in by_header] == types
    assert [m.id for m in by_query] == expected
    assert [m.id for m in header_wins] == expected[20:]


async def test_a_cursor_older_than_the_window_gets_one_reset(live: Live):
    old = await live.newest()
    await live.changes(WINDOW + 5)
    newest = await live.newest()
    async with (
        live.client() as http,
        open_stream(http, stream_url(live, f"&after={old}"), live.auth()) as stream,
    ):
        got = await stream.events_until_quiet()
        assert [(m.event, m.id) for m in got] == [("reset", newest)]
        # After the reset the stream goes on from now.
        await live.changes(1, task_index=1)
        assert (await stream.next_event()).id == newest + 1


async def test_a_cursor_from_the_future_gets_a_reset(live: Live):
    newest = await live.newest()
    async with (
        live.client() as http,
        open_stream(http, stream_url(live, f"&after={newest + 100}"), live.auth()) as stream,
    ):
        assert [m.event for m in await stream.events_until_quiet()] == ["reset"]


async def test_a_server_restart_between_disconnect_and_reconnect_loses_nothing(live: Live):
    cursor = await live.newest()
    async with live.client() as http, open_stream(http, stream_url(live), live.auth()) as stream:
        await stream.next()
    await live.changes(10)
    live.server.stop()
    # Changes while no server runs (another instance, the CLI) are in the log too.
    for action in (Action.TAKE, Action.START, Action.COMPLETE):
        await act(live.db, live.scene.acme, live.scene.acme.tasks[2], action, live.scene.carol)
    live.restart()
    async with (
        live.client() as http,
        open_stream(
            http, stream_url(live), {**live.auth(), "Last-Event-ID": str(cursor)}
        ) as stream,
    ):
        got = await stream.events_until_quiet()
    assert [m.id for m in got] == list(range(cursor + 1, cursor + 14))


async def test_sigterm_tells_streams_to_come_back_and_exits(live: Live):
    async with live.client() as http, open_stream(http, stream_url(live), live.auth()) as stream:
        await stream.next()
        live.server.process.send_signal(signal.SIGTERM)
        seen = []
        with pytest.raises(EOFError):
            while True:
                seen.append(await stream.next(wait=10))
        assert any(m.kind == "retry" for m in seen)
    assert live.server.process.wait(timeout=10) == 0


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ("?after=abc", {}),
        ("?after=-1", {}),
        ("?after=1.5", {}),
        ("", {"Last-Event-ID": "x"}),
        ("?sprint=abc", {}),
    ],
)
async def test_a_malformed_cursor_is_400(live: Live, query: str, headers: dict[str, str]):
    async with live.client() as http:
        response = await http.get(f"/o/acme/events{query}", headers={**live.auth(), **headers})
    assert response.status_code == 400
    assert "error" in response.json()


async def test_streams_need_a_member_of_that_organization(live: Live):
    async with live.client() as http:
        assert (await http.get(stream_url(live))).status_code == 401
        foreign = await http.get("/o/globex/events", headers=live.auth("bob"))
        assert foreign.status_code == 404
        other_sprint = await http.get(
            f"/o/acme/events?sprint={live.scene.globex.sprint.id}", headers=live.auth("bob")
        )
        assert other_sprint.status_code == 404


async def test_one_stream_too_many_is_429(live: Live):
    async with (
        live.client() as http,
        open_stream(http, stream_url(live), live.auth()) as a,
        open_stream(http, stream_url(live), live.auth()) as b,
        open_stream(http, stream_url(live), live.auth()) as c,
    ):
        for s in (a, b, c):
            await s.next()
        refused = await http.get(stream_url(live), headers=live.auth())
        assert refused.status_code == 429
        async with open_stream(http, stream_url(live), live.auth("carol")) as other_user:
            assert other_user.response.status_code == 200


async def test_a_head_request_gets_the_headers_and_holds_no_stream(live: Live):
    """A HEAD is answered with the headers a GET would get, and no body: it does not
    subscribe, so more HEADs than the per-person stream limit leave room for streams."""
    async with live.client() as http:
        for _ in range(5):  # the limit is 3
            answer = await asyncio.wait_for(http.head(stream_url(live), headers=live.auth()), 10)
            assert answer.status_code == 200
            assert answer.headers["Content-Type"].startswith("text/event-stream")
            assert "Content-Length" not in answer.headers  # the stream has no length
        assert (await http.head(stream_url(live))).status_code == 401  # checked the same
        async with (
            open_stream(http, stream_url(live), live.auth()) as a,
            open_stream(http, stream_url(live), live.auth()) as b,
            open_stream(http, stream_url(live), live.auth()) as c,
        ):
            for s in (a, b, c):
                assert s.response.status_code == 200
                await s.next()


async def test_a_stream_carries_only_its_organizations_events(live: Live):
    globex_start = await live.newest("globex")
    async with (
        live.client() as http,
        open_stream(http, "/o/globex/events", live.auth("dave")) as stream,
    ):
        await stream.next()
        await live.changes(3)  # acme
        r = await http.put(
            f"/api/v1/tasks/{live.scene.globex.tasks[0].id}/ownership", headers=live.auth("dave")
        )
        assert r.status_code == 200
        first = await stream.next_event()
    assert first.id == globex_start + 1 and first.event == "ownership_taken"
    assert "acme" not in first.data


async def test_hostile_titles_are_escaped_and_never_break_the_frame(live: Live):
    hostile = "<script>alert(\"x\")</script> & 'quotes' id: 999 event: reset"
    start = await live.newest()
    async with live.client() as http, open_stream(http, stream_url(live), live.auth()) as stream:
        await stream.next()
        created = await http.post(
            f"/api/v1/stories/{live.scene.acme.stories[0].id}/tasks",
            json={"title": hostile},
            headers=live.auth(),
        )
        assert created.status_code == 201
        message = await stream.next_event()
    assert (message.id, message.event) == (start + 1, "task_created")
    assert "<script>" not in message.data
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp;" in message.data


async def test_the_json_websocket_speaks_the_replaced_event_shapes(live: Live):
    start = await live.newest()
    url = live.server.url.replace("http", "ws") + "/api/v1/ws/tasks"
    async with websockets.connect(url, additional_headers=live.auth()) as ws:
        types = await live.changes(3)
        events = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in types]
    assert [e["id"] for e in events] == [start + 1, start + 2, start + 3]
    assert [e["type"] for e in events] == types
    taken = events[0]
    assert taken["organization_id"] == str(live.scene.acme.org.id)
    assert taken["task_id"] == str(live.scene.acme.tasks[0].id)
    assert taken["owner_user_id"] == str(live.scene.bob.id)
    assert events[1]["previous_owner_user_id"] == str(live.scene.bob.id)
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", taken["timestamp"])
    # Resume with ?after= and a token in the query (for clients that cannot set headers).
    async with websockets.connect(f"{url}?after={start + 1}&token={live.tokens['bob']}") as ws:
        resumed = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(2)]
    assert [e["id"] for e in resumed] == [start + 2, start + 3]


async def test_websockets_refuse_a_foreign_origin_before_the_handshake(live: Live):
    for path in ("/api/v1/ws/tasks", "/o/acme/ws"):
        url = live.server.url.replace("http", "ws") + path
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(
                url, additional_headers=live.auth(), origin="https://evil.example"
            ):
                pass
        assert refused.value.response.status_code == 403


async def test_the_html_websocket_carries_the_same_messages(live: Live):
    start = await live.newest()
    url = live.server.url.replace("http", "ws") + f"/o/acme/ws?sprint={live.scene.acme.sprint.id}"
    async with websockets.connect(
        url, additional_headers=live.auth(), origin=live.server.url
    ) as ws:
        await live.changes(1)
        html = await asyncio.wait_for(ws.recv(), 10)
        while "data-live-presence" in html:  # who is looking (this socket itself): not an event
            html = await asyncio.wait_for(ws.recv(), 10)
    assert f'data-event-id="{start + 1}"' in html and "data-live-card" in html


async def test_a_sprint_narrowed_stream_skips_other_sprints(live: Live):
    async def other_sprint(session):  # type: ignore[no-untyped-def]
        sprint = Sprint(
            org_id=live.scene.acme.org.id,
            name="Later",
            goal="",
            start_date=dt.date(2027, 1, 1),
            end_date=dt.date(2027, 1, 14),
            status=SprintStatus.PLANNING.value,
        )
        session.add(sprint)
        await session.flush()
        story = await create_story(
            session,
            org_id=sprint.org_id,
            sprint=sprint,
            fields=StoryFields(title="Later story", points=2),
            actor=live.scene.alice,
            role=Role.OWNER,
        )
        task, _ = await create_task(
            session,
            story=story,
            fields=TaskFields(title="Later task"),
            actor=live.scene.alice,
            role=Role.OWNER,
        )
        return task

    later_task = await live.db.write(other_sprint)
    start = await live.newest()
    async with live.client() as http, open_stream(http, stream_url(live), live.auth()) as stream:
        await stream.next()
        r = await http.put(f"/api/v1/tasks/{later_task.id}/ownership", headers=live.auth())
        assert r.status_code == 200
        await live.changes(1)
        message = await stream.next_event()
    # The other sprint's event (start + 1) never came; ids stay organization-wide.
    assert message.id == start + 2


async def sign_in_with_form(http: httpx.AsyncClient, email: str) -> str:
    """Development sign-in through the real form; returns the session's CSRF token."""
    page = (await http.get("/login")).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    response = await http.post("/login/dev", data={"csrf_token": token.group(1), "email": email})
    assert response.status_code == 303, response.text
    # Signing in starts a new session, with a new token.
    fresh = re.search(
        r'name="csrf_token" value="([^"]+)"', (await http.get("/o/acme/sprints")).text
    )
    assert fresh
    return fresh.group(1)


async def test_adding_and_editing_a_story_reaches_the_stream(live: Live):
    start = await live.newest()
    sprint_id = live.scene.acme.sprint.id
    async with (
        live.client() as owner,
        live.client() as http,
        open_stream(http, stream_url(live), live.auth()) as stream,
    ):
        await stream.next()
        csrf = await sign_in_with_form(owner, "alice@example.com")
        created = await owner.post(
            f"/o/acme/sprints/{sprint_id}/stories/new",
            data={"csrf_token": csrf, "title": "Export to CSV", "points": "2"},
        )
        assert created.status_code == 303
        message = await stream.next_event()
        story_id = re.search(r"group-story-(\d+)", created.headers["location"]).group(1)
        edited = await owner.post(
            f"/o/acme/stories/{story_id}/edit",
            data={"csrf_token": csrf, "title": "Export the board to CSV", "points": "3"},
        )
        assert edited.status_code == 303
        second = await stream.next_event()
    assert (message.id, message.event) == (start + 1, "story_created")
    assert "data-live-story" in message.data and 'data-stories="3"' in message.data
    assert "Alice added the story “Export to CSV”" in message.data
    assert (second.id, second.event) == (start + 2, "story_updated")
