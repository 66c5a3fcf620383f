"""Races and dropped requests against a real Hypercorn process on a SQLite file."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, select

from app.db import Database
from app.models import Membership, Organization, Role, Task, TaskEvent
from tests.factories import Scene, build_scene, make_user, token_for
from tests.server import Server, running_server

pytestmark = pytest.mark.server


@pytest.fixture
async def prepared(database_url: str) -> AsyncIterator[tuple[Database, Scene]]:
    """The standard scene, written before the server starts, on the same SQLite file."""
    db = Database(database_url)
    try:
        yield db, await build_scene(db)
    finally:
        await db.close()


@pytest.fixture
def server(prepared: tuple[Database, Scene], database_url: str) -> AsyncIterator[Server]:
    with running_server(database_url) as running:
        yield running


async def check_consistency(db: Database) -> None:
    """The event log and the tasks tell the same story, with no gap in event ids."""
    async with db.read() as s:
        for org in await s.scalars(select(Organization)):
            ids = list(
                await s.scalars(
                    select(TaskEvent.id).where(TaskEvent.org_id == org.id).order_by(TaskEvent.id)
                )
            )
            assert ids == list(range(1, org.last_event_id + 1)), "event ids have a gap"
        for task in await s.scalars(select(Task)):
            last = await s.scalar(
                select(TaskEvent)
                .where(TaskEvent.task_id == task.id)
                .order_by(TaskEvent.id.desc())
                .limit(1)
            )
            assert last is not None
            assert last.new_status == task.status, f"task {task.id} disagrees with its log"
            expected_owner = None if task.status == "available" else last.owner_id
            assert task.owner_id == expected_owner


async def test_twenty_simultaneous_takes_have_one_winner(
    prepared: tuple[Database, Scene], server: Server
):
    db, scene = prepared

    async def add_people(session) -> list:
        people = [await make_user(session, f"racer{i}") for i in range(20)]
        for person in people:
            session.add(
                Membership(org_id=scene.acme.org.id, user_id=person.id, role=Role.MEMBER.value)
            )
        return people

    racers = await db.write(add_people)
    tokens = [await token_for(db, person) for person in racers]
    task = scene.acme.tasks[0]
    async with db.read() as s:
        events_before = await s.scalar(select(func.count()).select_from(TaskEvent))

    limits = httpx.Limits(max_connections=40)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30) as http:
        start = asyncio.Event()

        async def take(token: str) -> httpx.Response:
            await start.wait()
            return await http.put(
                f"/api/v1/tasks/{task.id}/ownership", headers={"Authorization": f"Bearer {token}"}
            )

        racing = [asyncio.create_task(take(t)) for t in tokens]
        start.set()
        answers = await asyncio.gather(*racing)

    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] + [409] * 19
    winner = next(a for a in answers if a.status_code == 200).json()["task"]["owner_user_id"]
    for loser in (a for a in answers if a.status_code == 409):
        assert "took" in loser.json()["error"]["message"]
    async with db.read() as s:
        stored = await s.scalar(select(Task).where(Task.id == task.id))
        events_after = await s.scalar(select(func.count()).select_from(TaskEvent))
    assert stored is not None and str(stored.owner_id) == winner
    assert events_after == events_before + 1
    await check_consistency(db)


async def send_and_abort(server: Server, request: bytes, delay: float, reset: bool) -> None:
    """Send a request, then vanish before (or while) the server answers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(request)
    await writer.drain()
    if delay:
        await asyncio.sleep(delay)  # an abort at a chosen moment, not a wait for anything
    sock = writer.get_extra_info("socket")
    if reset and sock is not None:
        # SO_LINGER 0: close with a TCP reset, as a load generator that drops requests does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()
    with contextlib.suppress(ConnectionError, OSError):
        await writer.wait_closed()
    del reader


def raw_request(method: str, path: str, token: str, *, unfinished_body: bool) -> bytes:
    """A request line and headers; with `unfinished_body` the promised body never comes.

    Hypercorn stops reading a connection once a request is complete, so it only hears a
    client leave (and Quart only cancels the handler) while the body is still due. The
    ownership routes never read their body, so with an unfinished body the handler runs
    and the disconnect cancels it wherever it is, in the middle of a write included.
    """
    length = 64 if unfinished_body else 0
    return (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


async def test_requests_dropped_mid_change_leave_every_write_working(
    prepared: tuple[Database, Scene], server: Server
):
    db, scene = prepared
    tokens = {who: await token_for(db, scene.people[who]) for who in ("bob", "carol")}
    tasks = scene.acme.tasks[:4]
    rng = random.Random(20261125)
    actions = [
        ("PUT", "ownership"),
        ("DELETE", "ownership"),
        ("POST", "work/start"),
        ("POST", "work/complete"),
    ]

    for round_ in range(40):
        batch = []
        for _ in range(8):
            task = rng.choice(tasks)
            method, suffix = rng.choice(actions[:2] if round_ % 3 else actions)
            who = rng.choice(["bob", "carol"])
            request = raw_request(
                method,
                f"/api/v1/tasks/{task.id}/{suffix}",
                tokens[who],
                unfinished_body=rng.random() < 0.75,
            )
            delay = rng.choice([0, 0.0005, 0.001, 0.002, 0.003, 0.005])
            batch.append(send_and_abort(server, request, delay, reset=rng.random() < 0.5))
        await asyncio.gather(*batch)

    # Afterwards the server still takes writes, every one of them, and answers each.
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        headers = {"Authorization": f"Bearer {tokens['bob']}"}
        # First a change of our own on a task nobody dropped anything on: writes queue
        # for the lock first come, first served, so once it is answered the dropped
        # requests' writes before it have finished and the states below stay put.
        spare = scene.acme.tasks[-1]
        assert spare not in tasks
        for method in ("PUT", "DELETE"):
            reply = await http.request(
                method, f"/api/v1/tasks/{spare.id}/ownership", headers=headers
            )
            assert reply.status_code == 200
        for task in scene.acme.tasks:
            current = (await http.get(f"/api/v1/tasks/{task.id}", headers=headers)).json()
            if current["status"] == "completed":
                continue  # done is done: there is nothing to give up
            if current["status"] != "available":
                bobs = current["owner_user_id"] == str(scene.bob.id)
                owner = {"Authorization": f"Bearer {tokens['bob' if bobs else 'carol']}"}
                assert (
                    await http.delete(f"/api/v1/tasks/{task.id}/ownership", headers=owner)
                ).status_code == 200
                if not bobs:
                    continue
            assert (
                await http.put(f"/api/v1/tasks/{task.id}/ownership", headers=headers)
            ).status_code == 200
            assert (
                await http.post(f"/api/v1/tasks/{task.id}/work/start", headers=headers)
            ).status_code == 200
        assert (await http.get("/healthz")).json()["database"] == "ok"
    assert "cannot start a transaction" not in "".join(server.log)
    assert "database is locked" not in "".join(server.log)
    await check_consistency(db)
