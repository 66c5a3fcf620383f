"""The sprint report and velocity, read from the event log.

The report replays the organization's log: which task was in which sprint and in which
status at each event, when the sprint started and when it completed. Its definitions (in
tasks): **committed**, in the sprint when it became active; **added**, entered after
that; **removed**, left after that and before completion (moved out); **completed**,
completed while in the sprint and still in it when it completed (a task finished
elsewhere and brought in is only added); **carried over**, in it and unfinished then.
In points a story counts once: as committed if it was in the sprint at the start, as
completed if it had tasks in the sprint at the end, every one completed there, and
none of its tasks left the sprint unfinished;
added, removed and carried over count the stories that came in, went out, or went on.

Before completion the report is "so far" (the end is now, and nothing is carried over
yet). At completion it is stored on the sprint (`Sprint.report`) and never moves again;
`build_report` can rebuild it from the log at any time to check.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.events.types import EventType
from app.models import Sprint, SprintStatus, Story, TaskEvent
from app.timefmt import zone

DONE = "completed"
LISTS = ("committed", "added", "removed", "completed", "carried_over")
# The events that move tasks between sprints or change their status; the rest (edits)
# change nothing a report counts.
_COUNTED = (
    EventType.TASK_CREATED,
    EventType.STORY_CREATED,
    EventType.STORY_MOVED,
    EventType.SPRINT_COMPLETED,
    EventType.SPRINT_STATUS_CHANGED,
    EventType.OWNERSHIP_TAKEN,
    EventType.OWNERSHIP_RELEASED,
    EventType.STATUS_CHANGED,
    EventType.TASK_MOVED,
    EventType.TASK_ARCHIVED,
    EventType.TASK_RESTORED,
    EventType.STORY_ARCHIVED,
    EventType.STORY_RESTORED,
)
# Where archived work is, as the replay sees it: no sprint (sprint ids are positive),
# and not the backlog (None) either. Archiving is leaving a sprint; restoring, entering.
ARCHIVE = -1


@dataclass(frozen=True)
class Figure:
    """One line of the report: which tasks, and how many story points."""

    tasks: tuple[int, ...]
    points: int

    @property
    def count(self) -> int:
        return len(self.tasks)


@dataclass(frozen=True)
class Report:
    sprint_id: int
    final: bool  # completed: frozen
    started: bool  # false: the sprint is still in planning
    committed: Figure
    added: Figure
    removed: Figure
    completed: Figure
    carried_over: Figure

    def figures(self) -> dict[str, Figure]:
        return {name: getattr(self, name) for name in LISTS}

    def as_json(self) -> dict[str, Any]:
        """The API's shape (and what a completed sprint stores), task ids as strings."""
        out: dict[str, Any] = {"sprintId": str(self.sprint_id), "final": self.final}
        for name, figure in self.figures().items():
            out[_camel(name)] = {"tasks": figure.count, "points": figure.points}
        out["lists"] = {
            _camel(name): [str(t) for t in figure.tasks] for name, figure in self.figures().items()
        }
        out["started"] = self.started
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Report:
        figures = {
            name: Figure(
                tuple(int(t) for t in data["lists"][_camel(name)]),
                int(data[_camel(name)]["points"]),
            )
            for name in LISTS
        }
        return cls(
            sprint_id=int(data["sprintId"]),
            final=bool(data["final"]),
            started=bool(data.get("started", True)),
            **figures,
        )


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


# ---------------------------------------------------------------- the replay ------


@dataclass
class _Board:
    """What the log says is where, as it is replayed."""

    task_sprint: dict[int, int | None] = field(default_factory=dict)
    task_status: dict[int, str] = field(default_factory=dict)
    task_story: dict[int, int] = field(default_factory=dict)
    story_sprint: dict[int, int | None] = field(default_factory=dict)
    done_in: dict[int, int | None] = field(default_factory=dict)  # where it was completed

    def done_here(self, task_id: int, sprint_id: int) -> bool:
        """Completed, and completed while in this sprint."""
        return self.task_status.get(task_id) == DONE and self.done_in.get(task_id) == sprint_id

    def at_the_end(self, sprint_id: int) -> tuple[set[int], set[int], set[int]]:
        """The sprint's tasks, those completed in it, and those not completed (a task
        completed elsewhere before it came in is neither: it is only "added")."""
        members = self.tasks_in(sprint_id)
        done = {t for t in members if self.done_here(t, sprint_id)}
        unfinished = {t for t in members if self.task_status.get(t) != DONE}
        return members, done, unfinished

    def tasks_in(self, sprint_id: int) -> set[int]:
        return {t for t, s in self.task_sprint.items() if s == sprint_id}

    def stories_in(self, sprint_id: int) -> set[int]:
        own = {s for s, sprint in self.story_sprint.items() if sprint == sprint_id}
        return own | {self.task_story[t] for t in self.tasks_in(sprint_id)}


def replay(
    events: Iterable[Any],
    sprint_id: int,
    *,
    starts_at: dt.datetime | None,
    points: Mapping[int, int],
    status: str,
) -> Report:
    """The report of one sprint from the organization's log, oldest event first.

    `starts_at` is when the sprint's first day began: the start for a sprint that became
    active before the log recorded starts (the first event from then on). `points` are
    the stories' points; `status` the sprint's now (planning: not started).
    """
    board = _Board()
    started = False
    start_tasks: set[int] = set()
    start_stories: set[int] = set()
    added: set[int] = set()
    removed: set[int] = set()
    stories_added: set[int] = set()
    stories_removed: set[int] = set()
    left_unfinished: set[int] = set()  # stories with a task that left unfinished
    end: tuple[set[int], set[int], set[int]] | None = None  # see _Board.at_the_end
    logged_start = any(
        e.type == EventType.SPRINT_STATUS_CHANGED
        and e.sprint_id == sprint_id
        and e.new_status == SprintStatus.ACTIVE.value
        for e in events
    )

    def start() -> None:
        nonlocal started, start_tasks, start_stories
        started = True
        start_tasks = board.tasks_in(sprint_id)
        start_stories = board.stories_in(sprint_id)

    def move(task_id: int, to: int | None) -> None:
        was = board.task_sprint.get(task_id)
        if started and end is None and was != to:
            if was == sprint_id:
                removed.add(task_id)
                if board.task_status.get(task_id) != DONE:
                    # Its story's work here was not all done: it completes nothing here.
                    left_unfinished.add(board.task_story[task_id])
            if to == sprint_id:
                added.add(task_id)
        board.task_sprint[task_id] = to

    def regroup(stories: Iterable[int | None], change: Callable[[], None]) -> None:
        """Make a change, counting the stories it brings into the sprint or takes out."""
        concerned = {s for s in stories if s is not None}
        before = {s for s in concerned if s in board.stories_in(sprint_id)}
        change()
        after = {s for s in concerned if s in board.stories_in(sprint_id)}
        if started and end is None:
            stories_added.update(after - before)
            stories_removed.update(before - after)

    def move_story(story_id: int, to: int | None, tasks: Iterable[int]) -> None:
        def change() -> None:
            for task_id in tasks:
                move(task_id, to)
            board.story_sprint[story_id] = to

        regroup([story_id], change)

    def move_task(task_id: int, to: int | None, story_id: int | None = None) -> None:
        def change() -> None:
            move(task_id, to)
            if story_id is not None:
                board.task_story[task_id] = story_id

        regroup([board.task_story.get(task_id), story_id], change)

    archived_from: dict[int, int | None] = {}  # an archived story: where it was

    for e in events:
        kind = EventType(e.type)
        if (
            not started
            and not logged_start
            and status != SprintStatus.PLANNING.value
            and starts_at is not None
            and e.created_at >= starts_at
        ):
            start()
        if kind is EventType.SPRINT_STATUS_CHANGED:
            if e.sprint_id == sprint_id and e.new_status == SprintStatus.ACTIVE.value:
                start()
        elif kind is EventType.STORY_CREATED:
            move_story(e.story_id, e.sprint_id, ())
        elif kind is EventType.TASK_CREATED:
            board.task_story[e.task_id] = e.story_id
            board.task_status[e.task_id] = e.new_status or "available"
            move(e.task_id, e.sprint_id)
            if started and end is None and e.sprint_id == sprint_id:
                stories_added.add(e.story_id)  # (less those in at the start, below)
        elif kind is EventType.STORY_MOVED:
            move_story(e.story_id, e.to_sprint_id, e.task_ids or ())
        elif kind is EventType.SPRINT_COMPLETED:
            if e.sprint_id == sprint_id and end is None:
                if not started:
                    start()
                end = board.at_the_end(sprint_id)
            # The unfinished work goes on with its stories (entering this sprint, if
            # this is where it went).
            carried: dict[int, list[int]] = {}
            for task_id in e.task_ids or ():
                carried.setdefault(board.task_story[task_id], []).append(task_id)
            for story_id, tasks in carried.items():
                move_story(story_id, e.to_sprint_id, tasks)
        elif kind is EventType.TASK_MOVED:
            move_task(e.task_id, e.to_sprint_id, e.to_story_id)
        elif kind is EventType.TASK_ARCHIVED:
            move_task(e.task_id, ARCHIVE)
        elif kind is EventType.TASK_RESTORED:
            move_task(e.task_id, e.to_sprint_id)
        elif kind is EventType.STORY_ARCHIVED:
            if board.story_sprint.get(e.story_id) != ARCHIVE:  # (one event per place)
                archived_from[e.story_id] = board.story_sprint.get(e.story_id)
            move_story(e.story_id, ARCHIVE, e.task_ids or ())
        elif kind is EventType.STORY_RESTORED:
            move_story(e.story_id, archived_from.get(e.story_id), ())
            for task_id in e.task_ids or ():
                move_task(task_id, e.to_sprint_id)
        elif e.task_id is not None and e.new_status:
            if e.new_status == DONE and board.task_status.get(e.task_id) != DONE:
                board.done_in[e.task_id] = board.task_sprint.get(e.task_id)
            board.task_status[e.task_id] = e.new_status

    if not started and status != SprintStatus.PLANNING.value:
        start()  # under way, with nothing logged since its first day began
    final = end is not None
    # So far: the end is now, and nothing is carried over yet.
    members, done, unfinished = end if end is not None else board.at_the_end(sprint_id)
    if not final:
        unfinished = set()
    if not started:
        members, done = set(), set()

    def stories_of(tasks: set[int]) -> set[int]:
        return {board.task_story[t] for t in tasks}

    def sum_points(stories: set[int]) -> int:
        return sum(points.get(s, 0) for s in stories)

    completed_stories = {
        s
        for s in stories_of(members)
        if all(t in done for t in members if board.task_story[t] == s)
    }
    completed_stories -= left_unfinished
    return Report(
        sprint_id=sprint_id,
        final=final,
        started=started,
        committed=Figure(tuple(sorted(start_tasks)), sum_points(start_stories)),
        added=Figure(tuple(sorted(added)), sum_points(stories_added - start_stories)),
        removed=Figure(tuple(sorted(removed)), sum_points(stories_removed)),
        completed=Figure(tuple(sorted(done)), sum_points(completed_stories)),
        carried_over=Figure(tuple(sorted(unfinished)), sum_points(stories_of(unfinished))),
    )


async def build_report(session: AsyncSession, sprint: Sprint, time_zone: str) -> Report:
    """The report of a sprint, replayed from the log now (so far, or as it closed)."""
    rows = list(
        await session.execute(
            select(
                TaskEvent.id,
                TaskEvent.type,
                TaskEvent.created_at,
                TaskEvent.task_id,
                TaskEvent.story_id,
                TaskEvent.sprint_id,
                TaskEvent.to_sprint_id,
                TaskEvent.to_story_id,
                TaskEvent.task_ids,
                TaskEvent.new_status,
            )
            .where(TaskEvent.org_id == sprint.org_id, TaskEvent.type.in_(_COUNTED))
            .order_by(TaskEvent.id)
        )
    )
    stories = await session.execute(
        select(Story.id, Story.points).where(Story.org_id == sprint.org_id)
    )
    points = {story_id: value for story_id, value in stories}
    starts_at = dt.datetime.combine(sprint.start_date, dt.time(), zone(time_zone))
    return replay(
        rows, sprint.id, starts_at=starts_at.astimezone(dt.UTC), points=points, status=sprint.status
    )


async def load_report(session: AsyncSession, sprint: Sprint, time_zone: str) -> Report:
    """A sprint's report: the frozen one once it completed, else the one so far."""
    if sprint.report is not None:
        return Report.from_json(sprint.report)
    return await build_report(session, sprint, time_zone)


async def freeze_report(session: AsyncSession, sprint: Sprint, time_zone: str) -> Report:
    """Build the report of a sprint just completed (its completion logged) and store it."""
    report = await build_report(session, sprint, time_zone)
    sprint.report = report.as_json()
    await session.flush()
    return report


# ---------------------------------------------------------------- velocity --------


@dataclass(frozen=True)
class Velocity:
    """The last completed sprints (oldest first) and their committed and completed work."""

    sprints: tuple[tuple[Sprint, Report], ...]

    def _average(self, values: list[int]) -> float:
        return round(sum(values) / len(values), 1) if values else 0.0

    @property
    def average_points(self) -> float:
        return self._average([r.completed.points for _, r in self.sprints])

    @property
    def average_tasks(self) -> float:
        return self._average([r.completed.count for _, r in self.sprints])

    @property
    def top(self) -> int:
        """What the top of the chart stands for."""
        return max([1, *(max(r.committed.points, r.completed.points) for _, r in self.sprints)])


async def load_velocity(session: AsyncSession, org_id: int, last: int = 6) -> Velocity:
    """The last `last` completed sprints, from their frozen reports."""
    rows = list(
        await session.scalars(
            select(Sprint)
            .where(
                Sprint.org_id == org_id,
                Sprint.status == SprintStatus.COMPLETED.value,
                Sprint.report.is_not(None),
            )
            .order_by(Sprint.completed_at.desc(), Sprint.id.desc())
            .limit(last)
        )
    )
    rows.reverse()
    return Velocity(tuple((s, Report.from_json(s.report or {})) for s in rows))
