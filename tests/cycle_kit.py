"""The sprint cycle driven through the domain code, for the cycle's tests: `Cycle` plans,
starts, works and completes sprints in the acme organization of the factories' scene."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.models import Role, Sprint, Story, Task, User
from app.tasks.cycle import complete_sprint, move_story
from app.tasks.editing import StoryFields, TaskFields, create_story, create_task
from app.tasks.lifecycle import Action, change_task
from app.tasks.report import Report, build_report
from app.tasks.sprints import SprintFields, advance_sprint, plan_sprint
from tests.factories import Scene

TODAY = dt.datetime.now(dt.UTC).date()


@dataclass
class Story_:
    story: Story
    tasks: list[Task]


class Cycle:
    """The acme organization's cycle, driven as its owner alice (and bob for the work)."""

    def __init__(self, db: Database, scene: Scene) -> None:
        self.db, self.scene = db, scene
        self.org_id = scene.acme.org.id

    async def write(self, fn: Any) -> Any:
        return await self.db.write(fn)

    async def plan(self, name: str, start: dt.date = TODAY, days: int = 13) -> Sprint:
        fields = SprintFields(name, "", start.isoformat(), (start + dt.timedelta(days)).isoformat())
        return await self.write(
            lambda s: plan_sprint(s, org_id=self.org_id, fields=fields, role=Role.OWNER)
        )

    async def advance(self, sprint: Sprint, **kwargs: Any) -> Sprint:
        return await self.write(
            lambda s: advance_sprint(
                s,
                org_id=self.org_id,
                sprint_id=sprint.id,
                actor=self.scene.alice,
                role=Role.OWNER,
                today=TODAY,
                **kwargs,
            )
        )

    async def story(self, sprint: Sprint | None, title: str, points: int, tasks: int) -> Story_:
        async def make(s: AsyncSession) -> Story_:
            story = await create_story(
                s,
                org_id=self.org_id,
                sprint=sprint,
                fields=StoryFields(title=title, points=points),
                actor=self.scene.alice,
                role=Role.OWNER,
            )
            made = []
            for n in range(tasks):
                task, _ = await create_task(
                    s,
                    story=story,
                    fields=TaskFields(title=f"{title} {n + 1}"),
                    actor=self.scene.alice,
                    role=Role.OWNER,
                )
                made.append(task)
            return Story_(story, made)

        return await self.write(make)

    async def add_task(self, story: Story, title: str) -> Task:
        async def make(s: AsyncSession) -> Task:
            fresh = await s.get(Story, story.id)
            task, _ = await create_task(
                s,
                story=fresh,
                fields=TaskFields(title=title),
                actor=self.scene.alice,
                role=Role.OWNER,
            )
            return task

        return await self.write(make)

    async def act(self, task: Task, *actions: Action, who: User | None = None) -> None:
        for action in actions:
            await self.write(
                lambda s, action=action: change_task(
                    s, actor=who or self.scene.bob, org=self.org_id, task_id=task.id, action=action
                )
            )

    async def done(self, *tasks: Task) -> None:
        for task in tasks:
            await self.act(task, Action.TAKE, Action.START, Action.COMPLETE)

    async def move(self, story: Story, to: Sprint | None, role: Role = Role.OWNER) -> Story:
        return await self.write(
            lambda s: move_story(
                s,
                org_id=self.org_id,
                story_id=story.id,
                to_sprint_id=to.id if to else None,
                actor=self.scene.alice,
                role=role,
            )
        )

    async def complete(self, sprint: Sprint, carry_to: str) -> Any:
        return await self.write(
            lambda s: complete_sprint(
                s,
                org_id=self.org_id,
                sprint_id=sprint.id,
                carry_to=carry_to,
                actor=self.scene.alice,
                role=Role.OWNER,
                time_zone="UTC",
            )
        )

    async def get(self, model: type, id_: int) -> Any:
        async with self.db.read() as s:
            return await s.get(model, id_)


def ids(*tasks: Task) -> tuple[int, ...]:
    return tuple(sorted(t.id for t in tasks))


async def build(cycle: Cycle, sprint: Sprint) -> Report:
    async with cycle.db.read() as s:
        return await build_report(s, await s.get(Sprint, sprint.id), "UTC")
