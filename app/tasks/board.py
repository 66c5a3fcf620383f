"""What one board shows: a sprint's tasks, grouped and filtered as the URL asks.

Loading is two queries; grouping, filtering and counting are plain Python over the
loaded rows, so the page, the htmx answer and the JSON board agree by construction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import find_in_org
from app.errors import Invalid
from app.models import Organization, Sprint, Story, Task, TaskStatus
from app.tasks.sprints import SprintSummary, sprints_open_for_work, stories_of, summarize
from app.timefmt import local_today

GROUPINGS = ("story", "status")


@dataclass(frozen=True)
class BoardQuery:
    """Grouping and filters, as carried in the board's query string."""

    group: str = "story"
    statuses: frozenset[TaskStatus] = frozenset()
    mine: bool = False
    available: bool = False

    @classmethod
    def parse(
        cls,
        group: str | None,
        statuses: Iterable[str],
        mine: str | None,
        available: str | None,
        *,
        strict: bool = False,
    ) -> BoardQuery:
        """Read the query string; `strict` refuses unknown values instead of ignoring them."""
        chosen: set[TaskStatus] = set()
        for value in statuses:
            for part in value.split(","):
                part = part.strip().lower()
                if not part:
                    continue
                try:
                    chosen.add(TaskStatus(part))
                except ValueError:
                    if strict:
                        raise Invalid(
                            f"“{part}” is not a status; use "
                            + ", ".join(s.value for s in TaskStatus)
                            + ".",
                            field="status",
                        ) from None
        grouping = (group or "story").lower()
        if grouping not in GROUPINGS:
            if strict:
                raise Invalid("Group by “story” or “status”.", field="group")
            grouping = "story"
        return cls(grouping, frozenset(chosen), _flag(mine), _flag(available))

    @property
    def status_list(self) -> str:
        """The chosen statuses as "owned,inprogress", in board order (for the page script)."""
        return ",".join(s.value for s in TaskStatus if s in self.statuses)

    @property
    def filtered(self) -> bool:
        return bool(self.statuses or self.mine or self.available)

    def matches(self, task: Task, viewer_id: int | None) -> bool:
        """Does the task pass every filter? (Filters narrow: all must hold.)"""
        if self.statuses and task.status_enum not in self.statuses:
            return False
        if self.mine and (viewer_id is None or task.owner_id != viewer_id):
            return False
        return not (self.available and task.status != TaskStatus.AVAILABLE)

    def params(self) -> list[tuple[str, str]]:
        """The query string pairs that reproduce this view (defaults left out)."""
        pairs: list[tuple[str, str]] = []
        if self.group != "story":
            pairs.append(("group", self.group))
        pairs += [("status", s.value) for s in TaskStatus if s in self.statuses]
        if self.mine:
            pairs.append(("mine", "1"))
        if self.available:
            pairs.append(("available", "1"))
        return pairs

    def query_string(self, **changes: object) -> str:
        """`?…` for this view with some fields changed (for filter links)."""
        view = replace(self, **changes) if changes else self  # type: ignore[arg-type]
        pairs = view.params()
        return "?" + urlencode(pairs) if pairs else "?"

    def toggle_status(self, status: TaskStatus) -> str:
        return self.query_string(statuses=self.statuses ^ {status})


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


@dataclass
class Group:
    """One column of the board: a story or a status, and the cards shown in it."""

    key: str
    title: str
    tasks: list[Task]
    story: Story | None = None
    status: TaskStatus | None = None

    @property
    def dom_id(self) -> str:
        return f"group-{self.key}"


@dataclass
class BoardView:
    sprint: Sprint
    summary: SprintSummary
    query: BoardQuery
    groups: list[Group]
    stories: list[Story]
    tasks: list[Task]
    viewer_id: int | None
    shown: int
    filter_counts: dict[str, int] = field(default_factory=dict)
    # Where its stories can be moved (an owner's story menu): the sprints open for work.
    move_targets: list[Sprint] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.tasks)

    def group_for(self, task: Task) -> str:
        """The key of the group a task belongs in under this view's grouping."""
        return f"story-{task.story_id}" if self.query.group == "story" else f"status-{task.status}"

    def group(self, key: str) -> Group | None:
        return next((g for g in self.groups if g.key == key), None)


async def load_sprint(db: AsyncSession, org_id: int, sprint_id: int) -> Sprint:
    return await find_in_org(db, Sprint, org_id, sprint_id, what="sprint")


async def load_sprint_rows(
    db: AsyncSession, org_id: int, sprint_id: int
) -> tuple[list[Story], list[Task]]:
    """The sprint's stories in board order, and all their tasks."""
    stories = list(
        await db.scalars(
            select(Story)
            .where(Story.org_id == org_id, stories_of(sprint_id))
            .order_by(Story.position, Story.id)
        )
    )
    tasks = list(
        await db.scalars(
            select(Task)
            .join(Story, Story.id == Task.story_id)
            .where(Task.org_id == org_id, Task.sprint_id == sprint_id, ~Task.archived)
            .order_by(Story.position, Story.id, Task.id)
        )
    )
    return stories, tasks


def build_view(
    sprint: Sprint,
    stories: Sequence[Story],
    tasks: Sequence[Task],
    query: BoardQuery,
    viewer_id: int | None,
    today: dt.date,
) -> BoardView:
    """Group and filter the sprint's tasks for one viewer's query."""
    shown = [t for t in tasks if query.matches(t, viewer_id)]
    if query.group == "status":
        groups = [
            Group(f"status-{s.value}", s.label, [t for t in shown if t.status_enum is s], status=s)
            for s in TaskStatus
        ]
    else:
        by_story: dict[int, list[Task]] = {s.id: [] for s in stories}
        for task in shown:
            by_story.setdefault(task.story_id, []).append(task)
        groups = [Group(f"story-{s.id}", s.title, by_story[s.id], story=s) for s in stories]
    summary = summarize(sprint, stories, tasks, today)
    filter_counts = {s.value: summary.status_counts[s] for s in TaskStatus}
    filter_counts["mine"] = sum(1 for t in tasks if viewer_id and t.owner_id == viewer_id)
    filter_counts["available"] = summary.status_counts[TaskStatus.AVAILABLE]
    return BoardView(
        sprint=sprint,
        summary=summary,
        query=query,
        groups=groups,
        stories=list(stories),
        tasks=list(tasks),
        viewer_id=viewer_id,
        shown=len(shown),
        filter_counts=filter_counts,
    )


async def load_view(
    db: AsyncSession,
    org: Organization,
    sprint_id: int,
    query: BoardQuery,
    viewer_id: int | None,
) -> BoardView:
    """Load a sprint and build its board for one viewer, its header's chart included."""
    sprint = await load_sprint(db, org.id, sprint_id)
    stories, tasks = await load_sprint_rows(db, org.id, sprint_id)
    view = build_view(sprint, stories, tasks, query, viewer_id, local_today(org.time_zone))
    await view.summary.chart(db, org.time_zone)
    if not sprint.closed:
        view.move_targets = await sprints_open_for_work(db, org.id)
    return view
