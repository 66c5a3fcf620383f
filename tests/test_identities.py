"""Cached identities, and revocation still bounded: a change of who may do what takes
effect at once where it is made, and within a second everywhere else, even when the
message announcing it never arrives."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from quart import Quart
from quart.testing import QuartClient
from sqlalchemy import select

from app.auth import identities as identities_module
from app.auth.accounts import hash_token, revoke_token
from app.auth.identities import (
    CHECK_SECONDS,
    Change,
    Identities,
    current_identities,
    record_change,
)
from app.db import Database
from app.events.hub import Closed
from app.live.presence import BOARD
from app.live.streams import Opening, Viewer, WebSocketHtml, messages
from app.migrate import upgrade
from app.models import ApiToken
from tests import pg
from tests.factories import Scene, build_scene, token_for
from tests.redis_server import running_redis
from tests.server import Server, running_server
from tests.sse_client import Stream, open_stream
from tests.test_sessions import sign_in

pytestmark = pytest.mark.server

BOUND_SECONDS = 1.0  # what README and docs/security.md promise


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def token_id(db: Database, token: str) -> int:
    async with db.read() as s:
        found = await s.scalar(select(ApiToken.id).where(ApiToken.token_hash == hash_token(token)))
    assert found is not None
    return found


async def revoke_elsewhere(database_url: str, scene: Scene, token_id: int) -> None:
    """Revoke bob's token as another instance (or the command line) would: through a
    connection of its own, whose commits tell nobody in this process."""
    elsewhere = Database(database_url)
    try:
        await elsewhere.write(
            lambda s: revoke_token(s, user_id=scene.people["bob"].id, token_id=token_id)
        )
    finally:
        await elsewhere.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- one instance ---------------------------------------------------------------------------


@dataclass
class CachedToken:
    """Bob's token, answered once (so this instance has it cached), on an instance whose
    identity clock the test moves by hand."""

    identities: Identities
    clock: Clock
    client: QuartClient
    token: str
    id: int

    async def me(self) -> int:
        """The status `GET /api/v1/users/me` answers with the token."""
        return (await self.client.get("/api/v1/users/me", headers=bearer(self.token))).status_code


@pytest.fixture
async def cached_token(app: Quart, db: Database, scene: Scene) -> CachedToken:
    identities: Identities = current_identities(app)
    identities.clock = clock = Clock()
    token = await token_for(db, scene.people["bob"])
    cached = CachedToken(identities, clock, app.test_client(), token, await token_id(db, token))
    assert await cached.me() == 200
    return cached


async def test_a_known_token_is_not_read_again_and_its_revocation_counts_at_once(
    app: Quart, db: Database, scene: Scene
):
    identities: Identities = current_identities(app)
    token = await token_for(db, scene.people["bob"])
    client = app.test_client()
    assert (await client.get("/api/v1/users/me", headers=bearer(token))).status_code == 200
    misses = identities.misses
    assert (await client.get("/api/v1/users/me", headers=bearer(token))).status_code == 200
    assert identities.misses == misses  # answered from the cache
    tid = await token_id(db, token)
    await db.write(lambda s: revoke_token(s, user_id=scene.people["bob"].id, token_id=tid))
    assert (await client.get("/api/v1/users/me", headers=bearer(token))).status_code == 401


async def test_a_change_made_elsewhere_counts_once_the_log_is_read_within_the_bound(
    cached_token: CachedToken, scene: Scene, database_url: str
):
    """Another instance (or the command line) revokes the token, and no message comes:
    this instance goes on trusting its cache for at most CHECK_SECONDS."""
    await revoke_elsewhere(database_url, scene, cached_token.id)
    cached_token.clock.now += CHECK_SECONDS * 0.8
    assert await cached_token.me() == 200
    cached_token.clock.now += CHECK_SECONDS * 0.4
    assert await cached_token.me() == 401


async def test_a_log_read_that_began_too_long_before_a_request_does_not_vouch_for_it(
    cached_token: CachedToken, scene: Scene, database_url: str, monkeypatch: pytest.MonkeyPatch
):
    """A slow read (a busy database) began, found nothing, and a revocation committed
    while it was still under way. A request that arrives more than CHECK_SECONDS after
    that read began must wait for a newer one, which finds the revocation."""
    clock = cached_token.clock
    read_done, go_on = asyncio.Event(), asyncio.Event()
    real_changes_since = identities_module.changes_since

    async def slow_changes_since(*args, **kwargs):  # type: ignore[no-untyped-def]
        found = await real_changes_since(*args, **kwargs)
        if not read_done.is_set():  # the first read from now on: it has read, then stalls
            read_done.set()
            await go_on.wait()
        return found

    monkeypatch.setattr(identities_module, "changes_since", slow_changes_since)
    clock.now += CHECK_SECONDS * 1.2
    early = asyncio.create_task(cached_token.me())
    await read_done.wait()
    await revoke_elsewhere(database_url, scene, cached_token.id)
    clock.now += CHECK_SECONDS * 1.2
    late = asyncio.create_task(cached_token.me())
    go_on.set()
    # The early request arrived as the stalled read began: that read vouches for it.
    assert await early == 200
    assert await late == 401


def test_a_request_that_meets_a_finished_read_too_old_for_it_starts_another(
    tmp_path: Path,
) -> None:
    """A slow read ends; in the same loop round, before the read's done-callback has run,
    a request that arrived after the read's bound asks for a fresh log. It must start a
    read of its own: waiting again on the finished one returns at once, for ever (a
    worker spun at 100 % CPU like this while 10,000 streams opened). Run on a loop in a
    thread of its own, so that a spin fails the test instead of hanging it."""
    url = f"sqlite+aiosqlite:///{tmp_path}/identities.db"
    upgrade(url)
    done: list[bool] = []

    async def scenario() -> None:
        db = Database(url)
        clock = Clock()
        identities = Identities(db, clock=clock)
        learn = identities.learn
        late: list[asyncio.Future[None]] = []

        def learn_slowly(changes: Sequence[Change]) -> None:
            # The read's last step (nothing awaited after this): the read took long,
            # and a request arrives whose first step runs before the done-callback.
            if not late:
                clock.now += CHECK_SECONDS * 2
                late.append(asyncio.ensure_future(identities.fresh()))
            learn(changes)

        identities.learn = learn_slowly  # type: ignore[method-assign]
        try:
            await identities.fresh()
            await late[0]
            done.append(True)
        finally:
            await db.close()

    runner = threading.Thread(target=asyncio.run, args=(scenario(),), daemon=True)
    runner.start()
    runner.join(timeout=30)
    assert done == [True], "the request waited on a finished read without end"


async def test_what_was_loaded_while_a_change_arrived_is_not_kept(
    app: Quart, db: Database, scene: Scene
):
    identities: Identities = current_identities(app)
    started, go_on = asyncio.Event(), asyncio.Event()

    async def slow_load() -> str:
        started.set()
        await go_on.wait()
        return "read before the change"

    loading = asyncio.create_task(identities.get("key", slow_load))
    await started.wait()
    bob = scene.people["bob"]
    await db.write(lambda s: record_change(s, "signed out", user_id=bob.id))
    go_on.set()
    assert await loading == "read before the change"

    async def load_again() -> str:
        return "read after"

    assert await identities.get("key", load_again) == "read after"


class Saying(WebSocketHtml):
    """An encoder that says hello and why the stream ended, in words."""

    def hello(self) -> str:
        return "hello"

    def closing(self, reason: str) -> str:
        return f"closed: {reason}"


async def test_a_stream_checked_before_a_change_and_subscribed_after_it_is_closed(
    app: Quart, db: Database, scene: Scene
):
    """The change could not close a stream that was not subscribed yet: the stream sees
    that something changed since its check, and ends at once (its client comes back
    and is checked afresh)."""
    live = app.extensions["live"]
    bob = scene.people["bob"]
    checked = live.identities.generation
    await db.write(lambda s: record_change(s, "signed out", user_id=bob.id))
    opening = Opening(scene.acme.org.id, Viewer(bob.id, "Bob"), None, None, BOARD, checked)
    stream = messages(live, opening, Saying())

    async def read_all() -> list[object]:
        return [m async for m in stream]

    assert await asyncio.wait_for(read_all(), 10) == ["hello", "closed: identity changed"]


@pytest.mark.parametrize("release", ["this release", "the previous release"])
async def test_a_message_from_another_instance_closes_whom_it_names_and_no_one_else(
    app: Quart, scene: Scene, release: str
):
    """During a rolling deploy an instance of the previous release sends only the
    streams to close; ours sends that too, beside the logged change."""
    live = app.extensions["live"]
    bob, carol = scene.people["bob"], scene.people["carol"]
    whose = {"reason": "signed out", "user_id": bob.id, "org_id": None}
    command: dict[str, object] = {**whose, "session_id": None, "token_id": None}
    if release == "this release":
        command["identity_change"] = Change(10**6, "signed out", user_id=bob.id).as_message()
    org = scene.acme.org.id
    with (
        live.hub.subscribe(org, user_id=bob.id) as bobs,
        live.hub.subscribe(org, user_id=carol.id) as carols,
    ):
        before = live.identities.generation
        live._apply_control(command)
        assert isinstance(bobs.queue.get_nowait(), Closed)
        assert carols.queue.empty()
        assert live.identities.generation != before  # what was cached is forgotten


async def test_a_lower_id_committed_after_a_higher_one_is_still_applied(postgres_url: str):
    """On PostgreSQL an id is handed out at INSERT: a slow transaction's change shows up
    in the log after a later one's. It is applied when it does."""
    db = Database(postgres_url)
    clock = Clock()
    applied: list[Change] = []
    identities = Identities(db, clock=clock, apply=applied.extend)
    try:
        await identities.start()
        async with db._writer() as slow, db._writer() as quick:
            async with slow.begin():
                await record_change(slow, "signed out", user_id=1)
                async with quick.begin():
                    await record_change(quick, "signed out", user_id=2)
                clock.now += CHECK_SECONDS
                await identities.fresh()
                assert [c.user_id for c in applied] == [2]
            clock.now += CHECK_SECONDS
            await identities.fresh()
        assert [c.user_id for c in applied] == [2, 1]
        clock.now += CHECK_SECONDS
        await identities.fresh()
        assert len(applied) == 2  # each once
    finally:
        await identities.stop()
        await db.close()


# --- two instances on PostgreSQL: A makes the change, B must refuse within the bound --------


@dataclass
class Pair:
    a: Server
    b: Server
    url: str
    scene: Scene


@pytest.fixture(scope="module", params=["message lost", "message through Redis"])
def pair(request: pytest.FixtureRequest) -> Iterator[Pair]:
    """Two instances on one PostgreSQL database, shared by this module's tests (each
    changes other people). "message lost": neither has Redis, so B never hears of A's
    change and must find it in the log; else they share one."""
    with pg.fresh_postgres_database() as url:
        upgrade(url)
        scene = asyncio.run(_build_scene(url))
        with contextlib.ExitStack() as running:
            env = {}
            if request.param == "message through Redis":
                env["REDIS_URL"] = running.enter_context(running_redis()).url
            a = running.enter_context(running_server(url, **env))
            b = running.enter_context(running_server(url, **env))
            yield Pair(a, b, url, scene)


async def _build_scene(url: str) -> Scene:
    db = Database(url)
    try:
        return await build_scene(db)
    finally:
        await db.close()


@pytest.fixture
async def db_of(pair: Pair) -> AsyncIterator[Database]:
    db = Database(pair.url)
    try:
        yield db
    finally:
        await db.close()


async def refused_within(check: Callable[[], Awaitable[bool]]) -> float:
    """Seconds until `check()` says the request was refused, asking again at once."""
    began = time.monotonic()
    while not await check():
        assert time.monotonic() - began < BOUND_SECONDS + 5, "never refused"
    return time.monotonic() - began


async def closed_within(stream: Stream) -> float:
    began = time.monotonic()
    with pytest.raises(EOFError):
        while True:
            await stream.next(wait=BOUND_SECONDS + 5)
    return time.monotonic() - began


async def status(http: httpx.AsyncClient, url: str, **kwargs: object) -> int:
    return (await http.get(url, **kwargs)).status_code  # type: ignore[arg-type]


async def test_a_token_revoked_on_a_is_refused_by_b_and_its_stream_there_ends(
    pair: Pair, db_of: Database
):
    token = await token_for(db_of, pair.scene.people["bob"])
    tid = await token_id(db_of, token)
    me = f"{pair.b.url}/api/v1/users/me"
    async with (
        httpx.AsyncClient(base_url=pair.a.url, timeout=20) as on_a,
        httpx.AsyncClient(timeout=20) as on_b,
        open_stream(on_b, f"{pair.b.url}/o/acme/events", bearer(token)) as stream,
    ):
        await stream.next()
        assert await status(on_b, me, headers=bearer(token)) == 200  # B has it cached
        csrf = await sign_in(on_a, "bob@example.com")
        revoked = await on_a.post(f"/settings/tokens/{tid}/revoke", data={"csrf_token": csrf})
        assert revoked.status_code == 303
        closing = asyncio.create_task(closed_within(stream))
        took = await refused_within(lambda: _is(on_b, me, 401, headers=bearer(token)))
        assert took <= BOUND_SECONDS
        assert await closing <= BOUND_SECONDS


async def test_a_stream_on_b_ends_within_the_bound_though_nobody_asks_b_anything(
    pair: Pair, db_of: Database
):
    """B reads the log by itself: no request to B has to come for the stream to end."""
    token = await token_for(db_of, pair.scene.people["bob"])
    tid = await token_id(db_of, token)
    async with (
        httpx.AsyncClient(base_url=pair.a.url, timeout=20) as on_a,
        httpx.AsyncClient(timeout=20) as on_b,
        open_stream(on_b, f"{pair.b.url}/o/acme/events", bearer(token)) as stream,
    ):
        await stream.next()
        csrf = await sign_in(on_a, "bob@example.com")
        revoked = await on_a.post(f"/settings/tokens/{tid}/revoke", data={"csrf_token": csrf})
        assert revoked.status_code == 303
        assert await closed_within(stream) <= BOUND_SECONDS


async def test_a_session_signed_out_on_a_is_refused_by_b_and_its_stream_there_ends(pair: Pair):
    async with (
        httpx.AsyncClient(base_url=pair.a.url, timeout=20) as on_a,
        httpx.AsyncClient(timeout=20) as on_b,
    ):
        csrf = await sign_in(on_a, "carol@example.com")
        cookie = {"Cookie": "; ".join(f"{k}={v}" for k, v in on_a.cookies.items())}
        me = f"{pair.b.url}/api/v1/users/me"
        assert await status(on_b, me, headers=cookie) == 200
        async with open_stream(on_b, f"{pair.b.url}/o/acme/events", cookie) as stream:
            await stream.next()
            assert (await on_a.post("/logout", data={"csrf_token": csrf})).status_code == 303
            closing = asyncio.create_task(closed_within(stream))
            took = await refused_within(lambda: _is(on_b, me, 401, headers=cookie))
            assert took <= BOUND_SECONDS
            assert await closing <= BOUND_SECONDS


async def test_a_member_removed_on_a_is_refused_by_b_and_their_stream_there_ends(
    pair: Pair, db_of: Database
):
    carol = pair.scene.people["carol"]
    token = await token_for(db_of, carol)
    sprints = f"{pair.b.url}/api/v1/sprints"
    headers = {**bearer(token), "X-Organization-Id": "acme"}
    async with (
        httpx.AsyncClient(base_url=pair.a.url, timeout=20) as on_a,
        httpx.AsyncClient(timeout=20) as on_b,
        open_stream(on_b, f"{pair.b.url}/o/acme/events", bearer(token)) as stream,
    ):
        await stream.next()
        assert await status(on_b, sprints, headers=headers) == 200
        csrf = await sign_in(on_a, "alice@example.com")
        removed = await on_a.post(f"/o/acme/members/{carol.id}/remove", data={"csrf_token": csrf})
        assert removed.status_code == 303
        closing = asyncio.create_task(closed_within(stream))
        took = await refused_within(lambda: _is(on_b, sprints, 404, headers=headers))
        assert took <= BOUND_SECONDS
        assert await closing <= BOUND_SECONDS


async def test_an_owner_made_a_member_on_a_loses_owners_pages_on_b(pair: Pair):
    bob, victor = pair.scene.people["bob"], pair.scene.people["victor"]
    owners_page = f"{pair.b.url}/o/acme/members/{victor.id}/remove"
    async with (
        httpx.AsyncClient(base_url=pair.a.url, timeout=20) as alice_on_a,
        httpx.AsyncClient(base_url=pair.b.url, timeout=20) as bob_on_b,
    ):
        csrf = await sign_in(alice_on_a, "alice@example.com")
        role = f"/o/acme/members/{bob.id}/role"
        promoted = await alice_on_a.post(role, data={"csrf_token": csrf, "role": "owner"})
        assert promoted.status_code == 303
        await sign_in(bob_on_b, "bob@example.com")
        # B learns of the promotion within the bound too; then it has bob as an owner.
        assert await refused_within(lambda: _is(bob_on_b, owners_page, 200)) <= BOUND_SECONDS
        demoted = await alice_on_a.post(role, data={"csrf_token": csrf, "role": "member"})
        assert demoted.status_code == 303
        took = await refused_within(lambda: _is(bob_on_b, owners_page, 403))
        assert took <= BOUND_SECONDS


async def _is(http: httpx.AsyncClient, url: str, expected: int, **kwargs: object) -> bool:
    return await status(http, url, **kwargs) == expected


async def test_a_change_still_committing_when_an_instance_starts_is_applied(postgres_url: str):
    """An instance starting while a slow transaction holds a lower id than the newest
    row looks for that id too."""
    db = Database(postgres_url)
    clock = Clock()
    applied: list[Change] = []
    identities = Identities(db, clock=clock, apply=applied.extend)
    try:
        async with db._writer() as slow, db._writer() as quick:
            async with slow.begin():
                await record_change(slow, "signed out", user_id=1)
                async with quick.begin():
                    await record_change(quick, "signed out", user_id=2)
                await identities.start()  # sees 2 as the newest, 1 not yet
            clock.now += CHECK_SECONDS
            await identities.fresh()
        assert [c.user_id for c in applied] == [1]
    finally:
        await identities.stop()
        await db.close()
