"""The fan-out's view of the event log, on a real database."""

from __future__ import annotations

from quart import Quart, g

from app.db import Database
from app.events.broker import MemoryBroker
from app.live.fanout import LiveUpdates
from app.live.render import Renderer
from app.tasks.lifecycle import Action
from tests.factories import Scene, act


async def test_the_log_check_catches_up_watched_organizations_and_moves_on_for_the_rest(
    app: Quart, db: Database, scene: Scene
) -> None:
    acme, globex = scene.acme.org.id, scene.globex.org.id
    live = LiveUpdates(db, Renderer(app, db), broker=MemoryBroker(), window=100)
    # As if both organizations' events came from another process that announced nothing.
    live._last_seen = {acme: 0, globex: 0}
    newest = {org: await live.newest_id(org) for org in (acme, globex)}
    assert newest[acme] > 0 and newest[globex] > 0

    with live.hub.subscribe(acme, user_id=scene.alice.id):
        await live._check_log()
        # Nobody watches globex here: a stream opened later "from now" starts now.
        assert live._last_seen[globex] == newest[globex]
        # Someone watches acme: the fan-out is woken to send what it missed.
        assert live._last_seen[acme] == 0
        assert await anext(live.broker.batches()) == {acme: newest[acme]}


async def test_a_broadcast_rendered_inside_someones_request_is_the_same_bytes(
    app: Quart, db: Database, scene: Scene
) -> None:
    """A frame is rendered once for every viewer: rendered while Bob's request is running
    (a stream's replay does that), it carries nothing of his (his `g`, his session) and
    is byte for byte what a render outside any request gives."""
    live = app.extensions["live"]
    await act(db, scene.acme, scene.acme.tasks[0], Action.TAKE, scene.bob)
    events = await live.read_events(scene.acme.org.id, after=0, limit=100)
    outside = await Renderer(app, db).frames(scene.acme.org.id, events)
    async with app.test_request_context("/o/acme/events", headers={"HX-Request": "true"}):
        g.user, g.org = scene.bob, scene.globex.org  # someone else's page, mid-request
        inside = await Renderer(app, db).frames(scene.acme.org.id, events)
    assert [f.html for f in inside] == [f.html for f in outside]
    assert [f.html for f in inside][-1].count("globex") == 0
