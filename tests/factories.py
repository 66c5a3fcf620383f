"""Test data, made through the same domain code the app uses."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.accounts import DEV_ISSUER, create_token
from app.db import Database
from app.migrate import upgrade
from app.models import (
    Invitation,
    Membership,
    Organization,
    Role,
    Sprint,
    SprintStatus,
    Story,
    Task,
    TaskEvent,
    User,
)
from app.tasks.editing import CriterionFields, StoryFields, TaskFields, create_story, create_task
from app.tasks.lifecycle import Action, perform


@dataclass
class OrgScene:
    org: Organization
    sprint: Sprint
    stories: list[Story]
    tasks: list[Task]


@dataclass
class Scene:
    """acme: alice (owner), bob and carol (members), victor (viewer); globex: dave."""

    acme: OrgScene
    globex: OrgScene
    people: dict[str, User] = field(default_factory=dict)

    def __getattr__(self, name: str) -> User:
        try:
            return self.people[name]
        except KeyError:
            raise AttributeError(name) from None


async def make_user(session: AsyncSession, name: str) -> User:
    email = f"{name}@example.com"
    user = User(oidc_issuer=DEV_ISSUER, oidc_subject=email, email=email, name=name.title())
    session.add(user)
    await session.flush()
    return user


async def make_org(
    session: AsyncSession, slug: str, members: Sequence[tuple[User, Role]], n_tasks: int = 3
) -> OrgScene:
    org = Organization(slug=slug, name=slug.title())
    session.add(org)
    await session.flush()
    for user, role in members:
        session.add(Membership(org_id=org.id, user_id=user.id, role=role.value))
    today = dt.datetime.now(dt.UTC).date()
    sprint = Sprint(
        org_id=org.id,
        name=f"{slug.title()} sprint",
        goal="Ship it",
        start_date=today - dt.timedelta(days=2),
        end_date=today + dt.timedelta(days=4),
        status=SprintStatus.ACTIVE.value,
    )
    session.add(sprint)
    await session.flush()
    owner = next(u for u, r in members if r is Role.OWNER)
    stories, tasks = [], []
    for s in range(2):
        story = await create_story(
            session,
            org_id=org.id,
            sprint=sprint,
            fields=StoryFields(
                title=f"{slug} story {s + 1}",
                points=3,
                criteria=[
                    CriterionFields("a user", "they act", "it works"),
                    CriterionFields("a second case", "it happens", "it holds"),
                ],
            ),
            actor=owner,
            role=Role.OWNER,
        )
        stories.append(story)
        for t in range(n_tasks):
            task, _ = await create_task(
                session,
                story=story,
                fields=TaskFields(
                    title=f"{slug} task {s + 1}.{t + 1}", ac_refs=["AC1"], estimate_hours=2
                ),
                actor=owner,
                role=Role.OWNER,
            )
            tasks.append(task)
    return OrgScene(org, sprint, stories, tasks)


async def build_scene(db: Database) -> Scene:
    async def build(session: AsyncSession) -> Scene:
        people = {
            n: await make_user(session, n) for n in ("alice", "bob", "carol", "victor", "dave")
        }
        acme = await make_org(
            session,
            "acme",
            [
                (people["alice"], Role.OWNER),
                (people["bob"], Role.MEMBER),
                (people["carol"], Role.MEMBER),
                (people["victor"], Role.VIEWER),
            ],
        )
        globex = await make_org(session, "globex", [(people["dave"], Role.OWNER)])
        return Scene(acme=acme, globex=globex, people=people)

    return await db.write(build)


async def act(
    db: Database,
    scene_org: OrgScene,
    task: Task,
    action: Action,
    user: User,
    role: Role = Role.MEMBER,
) -> None:
    await db.write(
        lambda s: perform(
            s, org_id=scene_org.org.id, task_id=task.id, action=action, actor=user, role=role
        )
    )


async def fetch_task(db: Database, task_id: int) -> Task:
    async with db.read() as s:
        task = await s.scalar(select(Task).where(Task.id == task_id))
        assert task is not None
        return task


async def events_of(db: Database, task_id: int) -> list[TaskEvent]:
    async with db.read() as s:
        return list(
            await s.scalars(
                select(TaskEvent).where(TaskEvent.task_id == task_id).order_by(TaskEvent.id)
            )
        )


async def snapshot(db: Database) -> list[tuple[object, ...]]:
    """Every task's state and how many of everything else: compare around a refusal."""
    async with db.read() as s:
        rows = (
            await s.execute(
                select(
                    Task.id,
                    Task.status,
                    Task.owner_id,
                    Task.version,
                    Task.estimate_hours,
                    Task.title,
                ).order_by(Task.id)
            )
        ).all()
        counts = [
            (model.__tablename__, await s.scalar(select(func.count()).select_from(model)))
            for model in (TaskEvent, Sprint, Story, Membership, Invitation)
        ]
        sprints = (await s.execute(select(Sprint.id, Sprint.status).order_by(Sprint.id))).all()
        stories = (await s.execute(select(Story.id, Story.title, Story.points))).all()
    return [tuple(r) for r in rows] + counts + [tuple(r) for r in sprints + stories]


async def token_for(db: Database, user: User) -> str:
    return await db.write(lambda s: create_token(s, user=user, name="test"))


async def scene_with_token(database_url: str) -> tuple[Scene, str]:
    """The test scene written to a database a real server will serve, and bob's token."""
    db = Database(database_url)
    try:
        scene = await build_scene(db)
        return scene, await token_for(db, scene.bob)
    finally:
        await db.close()


@dataclass
class ServedScene:
    """The test scene in a fresh SQLite file for real servers to serve, with API tokens
    for bob, carol and victor."""

    database_url: str
    scene: Scene
    tokens: dict[str, str]

    def auth(self, who: str = "bob", **more: str) -> dict[str, str]:
        """Headers that sign `who` in (and any `more`)."""
        return {"Authorization": f"Bearer {self.tokens[who]}", **more}


async def served_scene(path: Path) -> ServedScene:
    """Migrate a new SQLite file at `path` and write the scene and the tokens into it."""
    url = f"sqlite+aiosqlite:///{path}"
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    try:
        scene = await build_scene(db)
        tokens = {who: await token_for(db, scene.people[who]) for who in ("bob", "carol", "victor")}
    finally:
        await db.close()
    return ServedScene(url, scene, tokens)
