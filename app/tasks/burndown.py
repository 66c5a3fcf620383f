"""The burndown: how many of a sprint's tasks were not done at the end of each day.

It is read backwards from now. Today's figure is the board's own (the header's "X of
Y": Y − X remain), and each earlier day undoes what the event log says happened after
that day ended: a completion after day d means the task was still open at the end of d;
a task created after d was not there yet. Days are the organization's, in its time zone.
Only the events that can move the chart are read, in one bounded query per sprint.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.events.types import EventType
from app.models import Sprint, Task, TaskEvent, TaskStatus
from app.timefmt import local_today, zone

DONE = TaskStatus.COMPLETED.value


class Moving(Protocol):
    """What the chart reads of an event (a logged row, or a row of `_MOVES`)."""

    type: str
    old_status: str | None
    new_status: str | None
    sprint_id: int | None
    to_sprint_id: int | None
    task_ids: list[int] | None
    done_count: int | None


def moves(event: Moving, sprint_id: int | None) -> tuple[int, int]:
    """How an event moves one sprint's chart: (tasks not done, tasks in the sprint).

    A new task arrives not done; a completion takes one off; a reopening (a done task
    going back) puts one back. Tasks moving in or out (a story or a task moved, work
    archived or restored) bring or take what they are. Everything else (taking,
    starting, pausing, giving up, editing, the sprint's own changes) leaves both where
    they were. A completed sprint's carry-over
    is not a move of its own chart: the chart stops where the sprint stopped (see
    `chart`).
    """
    kind = EventType(event.type)
    if kind.moves_tasks:
        count = len(event.task_ids or ())
        still_open = count - (event.done_count or 0)
        if kind is EventType.SPRINT_COMPLETED:
            return (still_open, count) if event.to_sprint_id == sprint_id else (0, 0)
        if event.sprint_id == event.to_sprint_id:
            return (0, 0)  # a reorder, or a task moved to a story in the same sprint
        if event.sprint_id == sprint_id:
            return (-still_open, -count)
        return (still_open, count) if event.to_sprint_id == sprint_id else (0, 0)
    if kind.about_sprint or kind.about_story or event.sprint_id != sprint_id:
        return (0, 0)
    if kind is EventType.TASK_CREATED:
        return (0, 1) if event.new_status == DONE else (1, 1)
    was_done, is_done = event.old_status == DONE, event.new_status == DONE
    if is_done and not was_done:
        return (-1, 0)
    if was_done and not is_done:
        return (1, 0)
    return (0, 0)


def carried_over(sprint: Sprint) -> int:
    """How many unfinished tasks a completed sprint carried on (0 before it completes)."""
    report = sprint.report or {}
    return int(report.get("carriedOver", {}).get("tasks", 0))


@dataclass(frozen=True)
class Shift:
    """The chart's movement on one local day: tasks not done, and tasks in the sprint."""

    day: dt.date
    remaining: int
    total: int


@dataclass(frozen=True)
class Day:
    date: dt.date
    remaining: int | None  # None: the day has not begun
    total: int | None
    ideal: float


@dataclass(frozen=True)
class Burndown:
    """One sprint's chart, as of `today` (the organization's date)."""

    sprint_id: int
    total: int  # tasks in the sprint now
    remaining: int  # not done now
    today: dt.date
    days: tuple[Day, ...]

    @property
    def series(self) -> list[int]:
        """Remaining at the end of each day that has begun, day one first."""
        return [d.remaining for d in self.days if d.remaining is not None]

    @property
    def day_number(self) -> int:
        """Which day of the sprint it is (0 before it begins, past the end after it)."""
        return (self.today - self.days[0].date).days + 1 if self.days else 0

    @property
    def current(self) -> Day | None:
        """Today's day, or the last one that has begun."""
        begun = [d for d in self.days if d.remaining is not None]
        return begun[-1] if begun else None

    @property
    def finished(self) -> bool:
        return bool(self.days) and self.today > self.days[-1].date

    @property
    def done_at_end(self) -> int | None:
        """Tasks done by the end of the last day (a finished sprint's velocity)."""
        if not self.finished:
            return None
        last = self.days[-1]
        assert last.total is not None and last.remaining is not None
        return last.total - last.remaining

    def sentence(self) -> str:
        """What the chart says, in one sentence (its <desc>)."""
        length = len(self.days)
        current = self.current
        if current is None:
            return (
                f"The sprint has not begun: {_count(self.total, 'task')} over "
                f"{_count(length, 'day')}, starting {self.days[0].date:%b %-d}."
                if self.days
                else "The sprint has no days."
            )
        number = self.days.index(current) + 1
        ideal = f"{current.ideal:g}"
        of_all = f"{current.remaining} of {_count(current.total or 0, 'task')}"
        if self.finished:
            return (
                f"The sprint has ended: {of_all} remained after day {number} of {length}; "
                f"ideal {ideal}."
            )
        verb = "remains" if current.remaining == 1 else "remain"
        return f"{of_all} {verb} on day {number} of {length}; ideal {ideal}."


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def chart(
    sprint: Sprint, *, total: int, remaining: int, shifts: Iterable[Shift], today: dt.date
) -> Burndown:
    """The chart from what is true now (`total`, `remaining`) and what moved it since.

    A completed sprint's unfinished tasks went on elsewhere when it closed; its chart
    ends with them still to do, as the sprint ended.
    """
    total, remaining = total + carried_over(sprint), remaining + carried_over(sprint)
    length = (sprint.end_date - sprint.start_date).days + 1
    after: Counter[dt.date] = Counter()
    grown: Counter[dt.date] = Counter()
    for shift in shifts:
        after[shift.day] += shift.remaining
        grown[shift.day] += shift.total
    days = []
    for index in range(max(0, length)):
        date = sprint.start_date + dt.timedelta(days=index)
        ideal = round(total * (length - 1 - index) / (length - 1), 1) if length > 1 else 0.0
        if date > today:
            days.append(Day(date, None, None, ideal))
            continue
        # What happened after this day ended, undone (today: nothing has).
        later = [d for d in after if d > date]
        days.append(
            Day(
                date,
                remaining - sum(after[d] for d in later),
                total - sum(grown[d] for d in later),
                ideal,
            )
        )
    return Burndown(sprint.id, total, remaining, today, tuple(days))


# What can move a chart: new tasks, completions and reopenings, and moves between
# sprints (`moves` sorts out which of them move one sprint's).
_MOVING_COLUMNS = (
    TaskEvent.created_at,
    TaskEvent.type,
    TaskEvent.old_status,
    TaskEvent.new_status,
    TaskEvent.sprint_id,
    TaskEvent.to_sprint_id,
    TaskEvent.task_ids,
    TaskEvent.done_count,
)
_CAN_MOVE = or_(
    TaskEvent.type.in_([EventType.TASK_CREATED, *(t for t in EventType if t.moves_tasks)]),
    TaskEvent.old_status == DONE,
    TaskEvent.new_status == DONE,
)
# Built once: every event that moves a chart runs it.
_MOVES = (
    select(*_MOVING_COLUMNS)
    .where(
        TaskEvent.org_id == bindparam("org_id"),
        or_(
            TaskEvent.sprint_id == bindparam("sprint_id"),
            TaskEvent.to_sprint_id == bindparam("sprint_id"),
        ),
        TaskEvent.created_at >= bindparam("since"),
        _CAN_MOVE,
    )
    .order_by(TaskEvent.id)
)


async def load_shifts(session: AsyncSession, sprint: Sprint, time_zone: str) -> list[Shift]:
    """What moved the chart after the sprint's first day ended, by local day."""
    tz = zone(time_zone)
    since = dt.datetime.combine(sprint.start_date + dt.timedelta(days=1), dt.time(), tz)
    params = {"org_id": sprint.org_id, "sprint_id": sprint.id, "since": since.astimezone(dt.UTC)}
    shifts = []
    for row in await session.execute(_MOVES, params):
        remaining, total = moves(row, sprint.id)
        if remaining or total:
            shifts.append(Shift(row.created_at.astimezone(tz).date(), remaining, total))
    return shifts


# For the sprints page: every sprint's counts, and what moved its chart, in two queries.
_TALLIES = (
    select(Task.sprint_id, func.count(Task.id), func.count(Task.id).filter(Task.status == DONE))
    .where(Task.org_id == bindparam("org_id"), Task.sprint_id.is_not(None), ~Task.archived)
    .group_by(Task.sprint_id)
)
_ALL_MOVES = (
    select(*_MOVING_COLUMNS)
    .where(
        TaskEvent.org_id == bindparam("org_id"),
        or_(TaskEvent.sprint_id.is_not(None), TaskEvent.to_sprint_id.is_not(None)),
        _CAN_MOVE,
    )
    .order_by(TaskEvent.id)
)


async def load_charts(
    session: AsyncSession, org_id: int, sprints: Iterable[Sprint], time_zone: str
) -> dict[int, Burndown]:
    """Every given sprint's chart (the sprints page's sparklines and velocity)."""
    tz, today = zone(time_zone), local_today(time_zone)
    counts = {
        sprint_id: (total, done)
        for sprint_id, total, done in await session.execute(_TALLIES, {"org_id": org_id})
    }
    shifts: dict[int, list[Shift]] = {}
    for row in await session.execute(_ALL_MOVES, {"org_id": org_id}):
        day = row.created_at.astimezone(tz).date()
        for sprint_id in {row.sprint_id, row.to_sprint_id} - {None}:
            remaining, total = moves(row, sprint_id)
            if remaining or total:
                shifts.setdefault(sprint_id, []).append(Shift(day, remaining, total))
    charts = {}
    for sprint in sprints:
        total, done = counts.get(sprint.id, (0, 0))
        charts[sprint.id] = chart(
            sprint,
            total=total,
            remaining=total - done,
            shifts=shifts.get(sprint.id, ()),
            today=today,
        )
    return charts


async def load_burndown(
    session: AsyncSession, sprint: Sprint, *, time_zone: str, total: int, remaining: int
) -> Burndown:
    """A sprint's chart, read now (`total` and `remaining` are the board's own counts)."""
    shifts = await load_shifts(session, sprint, time_zone)
    return chart(
        sprint, total=total, remaining=remaining, shifts=shifts, today=local_today(time_zone)
    )


@dataclass(frozen=True)
class Plot:
    """Where the chart's lines go in an SVG of `width` × `height`."""

    width: int
    height: int
    actual: str  # "x,y x,y …": remaining, one point per day that has begun
    ideal: str  # from day one's ideal to the last day's
    today: tuple[float, float] | None  # today's point, if the sprint is under way
    top: int  # what the top of the chart stands for


def plot(burndown: Burndown, *, width: int = 240, height: int = 72, pad: int = 5) -> Plot:
    """The chart's geometry: days across, tasks up, the most tasks the sprint had on top."""
    days = burndown.days
    count = len(days)
    top = max([burndown.total, 1, *(d.total for d in days if d.total is not None)])

    def x(index: int) -> float:
        return pad + (width - 2 * pad) * (index / (count - 1) if count > 1 else 0.5)

    def y(value: float) -> float:
        return pad + (height - 2 * pad) * (1 - value / top)

    actual = " ".join(
        f"{x(i):.1f},{y(d.remaining):.1f}" for i, d in enumerate(days) if d.remaining is not None
    )
    ideal = f"{x(0):.1f},{y(days[0].ideal):.1f} {x(count - 1):.1f},{y(days[-1].ideal):.1f}"
    today = None
    for i, d in enumerate(days):
        if d.date == burndown.today and d.remaining is not None:
            today = (round(x(i), 1), round(y(d.remaining), 1))
    return Plot(width, height, actual, ideal, today, top)
