"""Many instances on PostgreSQL and Redis: a change through one reaches streams on the other,
in order, across a Redis restart, with one winner per race and no gap in event ids."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import select

from app.db import Database
from app.models import Membership, Organization, Role, Task, TaskEvent
from tests.factories import Scene, build_scene, make_user, token_for
from tests.redis_server import RedisServer, running_redis
from tests.server import Server, running_server
from tests.sse_client import open_stream, presence_until

pytestmark = pytest.mark.server


@dataclass
class Cluster:
    a: Server
    b: Server
    redis: RedisServer
    db: Database
    scene: Scene
    tokens: dict[str, str]

    def auth(self, who: str = "bob") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    async def newest(self) -> int:
        async with self.db.read() as s:
            value = await s.scalar(
                select(Organization.last_event_id).where(Organization.id == self.scene.acme.org.id)
            )
            return int(value or 0)


@pytest.fixture
async def cluster(postgres_url: str) -> AsyncIterator[Cluster]:
    db = Database(postgres_url)
    scene = await build_scene(db)
    tokens = {who: await token_for(db, scene.people[who]) for who in ("bob", "carol")}
    with running_redis() as redis:
        env = {"REDIS_URL": redis.url, "SPRINTBOARD_HEARTBEAT_SECONDS": "0.5"}
        with running_server(postgres_url, **env) as a, running_server(postgres_url, **env) as b:
            try:
                yield Cluster(a, b, redis, db, scene, tokens)
            finally:
                await db.close()


async def flip(http: httpx.AsyncClient, task_id: int, n: int, headers: dict[str, str]) -> None:
    """n changes to one task: take, release, take, …"""
    for i in range(n):
        method = http.put if i % 2 == 0 else http.delete
        response = await method(f"/api/v1/tasks/{task_id}/ownership", headers=headers)
        assert response.status_code == 200, response.text


async def test_a_stream_on_b_receives_every_change_made_through_a(cluster: Cluster):
    start = await cluster.newest()
    stream_url = f"{cluster.b.url}/o/acme/events"
    async with (
        httpx.AsyncClient(timeout=30) as http,
        open_stream(http, stream_url, cluster.auth("carol")) as stream,
        httpx.AsyncClient(base_url=cluster.a.url, timeout=30) as a,
    ):
        await stream.next()
        await flip(a, cluster.scene.acme.tasks[0].id, 20, cluster.auth())
        got = [await stream.next_event(wait=15) for _ in range(20)]
    assert [m.id for m in got] == list(range(start + 1, start + 21))


async def test_health_reports_redis(cluster: Cluster):
    async with httpx.AsyncClient() as http:
        for server in (cluster.a, cluster.b):
            health = await http.get(f"{server.url}/healthz")
            assert health.status_code == 200
            assert health.json() == {"status": "ok", "database": "ok", "broker": "ok"}


async def test_a_redis_restart_loses_nothing_and_repeats_nothing(cluster: Cluster):
    start = await cluster.newest()
    task = cluster.scene.acme.tasks[0].id
    async with (
        httpx.AsyncClient(timeout=30) as http,
        httpx.AsyncClient(base_url=cluster.a.url, timeout=30) as a,
        open_stream(http, f"{cluster.b.url}/o/acme/events", cluster.auth("carol")) as stream,
    ):
        await stream.next()
        await flip(a, task, 6, cluster.auth())
        cluster.redis.stop()
        # Changes still succeed while Redis is away; health says so.
        await flip(a, task, 6, cluster.auth())
        health = await a.get("/healthz")
        assert health.status_code == 503 and health.json()["broker"] == "down"
        cluster.redis.start()
        await flip(a, task, 6, cluster.auth())
        got = [await stream.next_event(wait=30) for _ in range(18)]
        extra = await stream.events_until_quiet(wait=15)
    assert [m.id for m in got] == list(range(start + 1, start + 19))
    assert extra == []


async def test_presence_crosses_instances_and_a_killed_instance_leaves(cluster: Cluster):
    """Bob on A, Carol on B: she sees him within the join bound. A dies with `kill -9`
    (saying nothing): B drops A's people once A has been silent for the down period."""
    bob, carol = cluster.scene.bob.id, cluster.scene.carol.id
    task = cluster.scene.acme.tasks[0].id
    sprint = cluster.scene.acme.sprint.id
    async with (
        httpx.AsyncClient(timeout=30) as http,
        httpx.AsyncClient(timeout=30) as http_a,
        open_stream(
            http, f"{cluster.b.url}/o/acme/events?sprint={sprint}", cluster.auth("carol")
        ) as watching,
    ):
        await presence_until(watching, {carol: None}, 2)
        on_a = open_stream(
            http_a, f"{cluster.a.url}/o/acme/events?sprint={sprint}&task={task}", cluster.auth()
        )
        await on_a.__aenter__()
        try:
            await presence_until(watching, {carol: None, bob: task}, 2)
            cluster.a.process.kill()
        finally:
            with contextlib.suppress(httpx.HTTPError):  # its instance is gone
                await on_a.__aexit__(None, None, None)
        gone = await presence_until(watching, {carol: None}, 60)
    print(f"a killed instance's people gone from B after {gone:.1f} s")


async def test_a_deploy_does_not_show_as_everyone_leaving(cluster: Cluster):
    """A gets SIGTERM (a deploy): its streams end and their browsers will be back in a
    few seconds, so B goes on showing A's people instead of flashing them away."""
    bob, carol = cluster.scene.bob.id, cluster.scene.carol.id
    board = f"/o/acme/events?sprint={cluster.scene.acme.sprint.id}"
    async with (
        httpx.AsyncClient(timeout=30) as http,
        httpx.AsyncClient(timeout=30) as http_a,
        open_stream(http, cluster.b.url + board, cluster.auth("carol")) as watching,
    ):
        async with open_stream(http_a, cluster.a.url + board, cluster.auth()) as on_a:
            await presence_until(watching, {carol: None, bob: None}, 2)
            cluster.a.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(EOFError, httpx.HTTPError):
                while True:  # A tells its stream when to come back, and ends it
                    await on_a.next(wait=10)
        assert cluster.a.process.wait(timeout=10) == 0
        with pytest.raises(TimeoutError):  # nobody flickers away meanwhile
            await presence_until(watching, {carol: None}, 6)


async def test_presence_rebuilds_after_a_redis_restart(cluster: Cluster):
    """Alice opens the board on A while Redis is down: nobody can tell B. Once Redis is
    back, A says all it has and B shows her."""
    alice_token = await token_for(cluster.db, cluster.scene.alice)
    bob, carol, alice = (cluster.scene.people[n].id for n in ("bob", "carol", "alice"))
    board = f"/o/acme/events?sprint={cluster.scene.acme.sprint.id}"
    async with (
        httpx.AsyncClient(timeout=30) as http,
        open_stream(http, cluster.b.url + board, cluster.auth("carol")) as watching,
        open_stream(http, cluster.a.url + board, cluster.auth("bob")),
    ):
        await presence_until(watching, {carol: None, bob: None}, 4)
        cluster.redis.stop()
        async with open_stream(
            http, cluster.a.url + board, {"Authorization": f"Bearer {alice_token}"}
        ) as alice_stream:
            await presence_until(alice_stream, {carol: None, bob: None, alice: None}, 4)
            cluster.redis.start()
            await presence_until(watching, {carol: None, bob: None, alice: None}, 30)


async def test_twenty_takes_across_both_instances_have_one_winner(cluster: Cluster):
    async def add_racers(session):  # type: ignore[no-untyped-def]
        people = [await make_user(session, f"racer{i}") for i in range(20)]
        for person in people:
            session.add(
                Membership(
                    org_id=cluster.scene.acme.org.id, user_id=person.id, role=Role.MEMBER.value
                )
            )
        return people

    racers = await cluster.db.write(add_racers)
    tokens = [await token_for(cluster.db, person) for person in racers]
    task = cluster.scene.acme.tasks[1]
    before = await cluster.newest()
    async with httpx.AsyncClient(timeout=30) as http:
        gate = asyncio.Event()

        async def take(i: int, token: str) -> int:
            await gate.wait()
            server = cluster.a if i % 2 else cluster.b
            response = await http.put(
                f"{server.url}/api/v1/tasks/{task.id}/ownership",
                headers={"Authorization": f"Bearer {token}"},
            )
            return response.status_code

        racing = [asyncio.create_task(take(i, t)) for i, t in enumerate(tokens)]
        gate.set()
        codes = sorted(await asyncio.gather(*racing))
    assert codes == [200] + [409] * 19
    assert await cluster.newest() == before + 1
    async with cluster.db.read() as s:
        taken = await s.scalar(select(Task).where(Task.id == task.id))
        assert taken is not None and taken.status == "owned"


async def test_concurrent_changes_from_both_instances_keep_ids_gapless_and_in_order(
    cluster: Cluster,
):
    start = await cluster.newest()
    tasks = cluster.scene.acme.tasks
    async with (
        httpx.AsyncClient(timeout=30) as http,
        httpx.AsyncClient(base_url=cluster.a.url, timeout=30) as a,
        httpx.AsyncClient(base_url=cluster.b.url, timeout=30) as b,
        open_stream(http, f"{cluster.b.url}/o/acme/events", cluster.auth("carol")) as stream,
    ):
        await stream.next()
        await asyncio.gather(
            flip(a, tasks[2].id, 10, cluster.auth("bob")),
            flip(b, tasks[3].id, 10, cluster.auth("carol")),
            flip(a, tasks[4].id, 10, cluster.auth("carol")),
            flip(b, tasks[5].id, 10, cluster.auth("bob")),
        )
        got = [await stream.next_event(wait=20) for _ in range(40)]
    ids = [m.id for m in got]
    assert ids == list(range(start + 1, start + 41))
    async with cluster.db.read() as s:
        logged = list(
            await s.scalars(
                select(TaskEvent.id)
                .where(TaskEvent.org_id == cluster.scene.acme.org.id, TaskEvent.id > start)
                .order_by(TaskEvent.id)
            )
        )
    assert logged == ids


async def test_several_workers_on_one_port_share_every_change(cluster: Cluster, postgres_url: str):
    env = {"REDIS_URL": cluster.redis.url, "SPRINTBOARD_HEARTBEAT_SECONDS": "0.5"}
    with running_server(postgres_url, workers=2, **env) as pair:
        start = await cluster.newest()
        async with (
            httpx.AsyncClient(timeout=30) as http,
            open_stream(http, f"{pair.url}/o/acme/events", cluster.auth("carol")) as stream,
        ):
            await stream.next()
            # A new connection per change: the kernel hands them to either worker.
            task_id = cluster.scene.acme.tasks[0].id
            for i in range(12):
                async with httpx.AsyncClient(base_url=pair.url, timeout=30) as one_off:
                    method = one_off.put if i % 2 == 0 else one_off.delete
                    response = await method(
                        f"/api/v1/tasks/{task_id}/ownership", headers=cluster.auth()
                    )
                    assert response.status_code == 200, response.text
            newest = await cluster.newest()
            got = [await stream.next_event(wait=20) for _ in range(newest - start)]
    assert [m.id for m in got] == list(range(start + 1, newest + 1))
