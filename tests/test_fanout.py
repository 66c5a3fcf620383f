"""The fan-out's view of the event log, on a real database."""

from __future__ import annotations

from quart import Quart

from app.db import Database
from app.events.broker import MemoryBroker
from app.live.fanout import LiveUpdates
from app.live.render import Renderer
from tests.factories import Scene


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
