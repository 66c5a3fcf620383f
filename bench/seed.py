"""The benchmark's data: a migrated database with the demo organizations, a story of
benchmark tasks in Acme's active sprint, and API tokens for the people who act and watch.

It goes through the app's own code (migrations, demo loader, story and task creation,
tokens), so the database is exactly what a real installation would hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
from sqlalchemy import select, update

from app import migrate
from app.auth.accounts import create_token, find_org, find_user_by_email
from app.db import Database, utcnow
from app.demo import load_demo
from app.models import ApiToken, Membership, Role, Sprint, SprintStatus, User
from app.tasks.editing import StoryFields, TaskFields, create_story, create_task

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
ORG = "acme"
ACTOR = "alice@example.com"  # an owner: takes and releases tasks
WATCHER = "victor@example.com"  # a viewer: opens the live streams


@dataclass(frozen=True)
class Scenario:
    database_url: str
    org: str
    actor_token: str
    watcher_token: str
    fanout_task: int
    throughput_tasks: tuple[int, ...]
    sprint: int


async def prepare(database_url: str, *, tasks: int = 8) -> Scenario:
    """Migrate `database_url`, load the demo data and add the benchmark's story."""
    # Alembic runs its own event loop: give it a thread.
    await asyncio.to_thread(migrate.upgrade, database_url)
    return await _fill(database_url, tasks)


async def _fill(database_url: str, tasks: int) -> Scenario:
    db = Database(database_url)
    try:
        await load_demo(db, progress=lambda _message: None)

        async def work(session):  # type: ignore[no-untyped-def]
            org = await find_org(session, ORG)
            actor = await find_user_by_email(session, ACTOR)
            watcher = await find_user_by_email(session, WATCHER)
            assert actor is not None and watcher is not None
            sprint = await session.scalar(
                select(Sprint).where(
                    Sprint.org_id == org.id, Sprint.status == SprintStatus.ACTIVE.value
                )
            )
            story = await create_story(
                session,
                org_id=org.id,
                sprint=sprint,
                fields=StoryFields(title="Benchmark", description="Tasks the benchmark moves."),
                actor=actor,
                role=Role.OWNER,
            )
            ids = []
            for number in range(tasks + 1):
                task, _event = await create_task(
                    session,
                    story=story,
                    fields=TaskFields(title=f"Benchmark task {number}", estimate_hours=2),
                    actor=actor,
                    role=Role.OWNER,
                )
                ids.append(task.id)
            return Scenario(
                database_url=database_url,
                org=ORG,
                actor_token=await create_token(session, user=actor, name="bench"),
                watcher_token=await create_token(session, user=watcher, name="bench"),
                fanout_task=ids[0],
                throughput_tasks=tuple(ids[1:]),
                sprint=sprint.id,
            )

        return await db.write(work)  # type: ignore[no-any-return]
    finally:
        await db.close()


async def viewers(database_url: str, count: int) -> list[str]:
    """`count` more people in the organization (viewers), and an API token for each."""
    db = Database(database_url)
    try:

        async def work(session):  # type: ignore[no-untyped-def]
            org = await find_org(session, ORG)
            people = [
                User(
                    oidc_issuer="bench",
                    oidc_subject=f"viewer-{n}",
                    email=f"viewer{n}@bench.example",
                    name=f"Viewer {n:04}",
                )
                for n in range(count)
            ]
            session.add_all(people)
            await session.flush()
            session.add_all(
                Membership(org_id=org.id, user_id=p.id, role=Role.VIEWER.value) for p in people
            )
            tokens = [await create_token(session, user=p, name="bench") for p in people]
            # People who used the app a moment ago: their first request is no write to
            # note that (as the watcher's and actor's are not, after the warm-up).
            await session.execute(
                update(ApiToken)
                .where(ApiToken.user_id.in_([p.id for p in people]))
                .values(last_used_at=utcnow())
            )
            return tokens

        return await db.write(work)  # type: ignore[no-any-return]
    finally:
        await db.close()


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(PG_ADMIN)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A fresh PostgreSQL database for one benchmark, dropped afterwards."""
    name = f"sprintboard_bench_{uuid.uuid4().hex[:10]}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
