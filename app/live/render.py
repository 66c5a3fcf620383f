"""Render an event once into the message every viewer receives.

The message is a bundle of what the event changed: the task's card (placed by the
page's script, since where it belongs depends on the viewer's grouping and filters), the
sprint's counts, the sprint header as an out-of-band swap when its figures moved (see
`moves_header`), and a toast. Nothing in it depends on who receives it.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from markupsafe import Markup
from quart import Quart, render_template
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.events.hub import Frame, Notice
from app.events.serialize import event_json
from app.events.types import EventType
from app.live import presence, sse
from app.live.cards import Cards, compact, for_broadcast
from app.live.presence import Key, Seen
from app.models import Organization, Sprint, Task, TaskEvent, TaskStatus
from app.tasks.burndown import Burndown, Shift, chart, load_shifts, moves
from app.tasks.merging import labels
from app.tasks.sprints import SprintSummary, load_summary
from app.timefmt import local_today

CACHE_SIZE = 4096
T = TypeVar("T")


# Built once: every event runs them (building a statement costs more than running it).
_TASKS = select(Task).where(
    Task.org_id == bindparam("org_id"), Task.id.in_(bindparam("ids", expanding=True))
)
_SPRINTS = select(Sprint).where(
    Sprint.org_id == bindparam("org_id"), Sprint.id.in_(bindparam("ids", expanding=True))
)
_SPRINT_NAMES = select(Sprint.id, Sprint.name).where(
    Sprint.org_id == bindparam("org_id"), Sprint.id.in_(bindparam("ids", expanding=True))
)


def moves_header(event: TaskEvent) -> bool:
    """Does the event move a figure of its sprint's header: progress, the counts of
    tasks and stories, the burndown, or the sprint itself? Taking, starting, pausing,
    giving up and editing a task move none of them."""
    kind = EventType(event.type)
    if kind.about_sprint or kind.about_story:
        return True
    return moves(event, event.sprint_id) != (0, 0)


# What a teammate did, by event type (status changes are worded by their statuses).
_DID = {
    EventType.OWNERSHIP_TAKEN: "took",
    EventType.OWNERSHIP_RELEASED: "released",
    EventType.TASK_CREATED: "added",
    EventType.TASK_UPDATED: "edited",
    EventType.STORY_CREATED: "added the story",
    EventType.STORY_UPDATED: "edited the story",
    EventType.TASK_ARCHIVED: "archived",
    EventType.TASK_RESTORED: "restored",
    EventType.STORY_ARCHIVED: "archived the story",
    EventType.STORY_RESTORED: "restored the story",
}


def toast_text(event: TaskEvent, sprint_names: Mapping[int, str] | None = None) -> str:
    """ "Bob took “Write API tests”", in the words a teammate would use (`sprint_names`:
    the names of the sprints a move names)."""
    who = event.actor.first_name if event.actor else "Someone"
    title = f"“{event.title}”"
    kind = EventType(event.type)
    names = sprint_names or {}
    to = "the backlog"
    if event.to_sprint_id is not None:
        to = names.get(event.to_sprint_id, "another sprint")
    if kind is EventType.TASK_MOVED:
        return f"{who} moved {title} to another story"
    if kind is EventType.STORY_MOVED:
        if event.sprint_id == event.to_sprint_id:
            return f"{who} reordered the story {title}"
        return f"{who} moved the story {title} to {to}"
    if kind is EventType.SPRINT_COMPLETED:
        count = len(event.task_ids or ())
        if not count:
            return f"{who} completed {title}"
        return f"{who} completed {title}; {_tasks(count)} went on to {to}"
    if kind is EventType.SPRINT_STATUS_CHANGED:
        if event.new_status == "active":
            return f"{who} started {title}"
        return f"{who} moved {title} to {event.new_status}"
    if kind is EventType.SPRINT_DELETED:
        return f"{who} deleted the sprint {title}"
    if kind is EventType.SPRINT_UPDATED:
        return f"{who} changed the {labels((event.fields or '').split(','))} of {title}"
    if kind is EventType.OWNERSHIP_RELEASED and _freed(event):
        # Said to everyone, and so to the one who held it, on every page they have open.
        return f"{who} freed {title}: {event.reason}"
    did = _DID.get(kind)
    if did is not None:
        return f"{who} {did} {title}"
    if event.new_status == TaskStatus.COMPLETED.value:
        return f"{who} completed {title}"
    if event.new_status == TaskStatus.OWNED.value and event.old_status == "inprogress":
        return f"{who} paused {title}"
    label = TaskStatus(event.new_status).label if event.new_status else "a new status"
    return f"{who} moved {title} to {label}"


def _freed(event: TaskEvent) -> bool:
    """An owner freed the task from someone else (not its holder giving it up)."""
    return event.previous_owner_id is not None and event.actor_id != event.previous_owner_id


def _tasks(count: int) -> str:
    return "1 unfinished task" if count == 1 else f"{count} unfinished tasks"


def change_text(event: TaskEvent) -> str:
    """What an edit page says of someone else's change: "Bob changed the title and
    estimate" for an edit, the toast's words for the rest."""
    if event.fields and EventType(event.type).is_edit:
        who = event.actor.first_name if event.actor else "Someone"
        return f"{who} changed the {labels(event.fields.split(','))}"
    return toast_text(event)


class Renderer:
    """Turns events into frames, caching them so replays and fan-out share the work."""

    def __init__(self, app: Quart, db: Database) -> None:
        self.app = app
        self.db = db
        self._cache: OrderedDict[tuple[int, int], Frame] = OrderedDict()
        # (organization, sprint) → (time zone, the log's newest id when read, what moved
        # its chart by local day); the sprints seen most recently, at most CACHE_SIZE.
        self._shifts: OrderedDict[tuple[int, int], tuple[str, int, list[Shift]]] = OrderedDict()
        # What rendering has cost: the time per event of the latest renders (the
        # benchmark reads their median from the log at exit).
        self.render_times: deque[float] = deque(maxlen=10_000)
        self._slugs: dict[int, str] = {}  # organizations' slugs never change
        self._paths = app.url_map.bind("")  # paths only: a broadcast has no host of its own
        self.cards = Cards()  # shared with the board pages: a card is a card for everyone
        # (organization, sprint) → the local day its header last went out: the first
        # event of a new day brings it again (days left, the chart's today).
        self._header_days: dict[tuple[int, int], dt.date] = {}

    async def frames(self, org_id: int, events: Sequence[TaskEvent]) -> list[Frame]:
        """The frames of these events (all of one organization), in the same order."""
        missing = [e for e in events if (org_id, e.id) not in self._cache]
        if missing:
            started = time.perf_counter()
            for frame in await self._render(org_id, missing):
                self._remember(frame)
            each = (time.perf_counter() - started) / len(missing)
            self.render_times.extend([each] * len(missing))
        return [self._cache[(org_id, e.id)] for e in events]

    def _remember(self, frame: Frame) -> None:
        self._cache[(frame.org_id, frame.id)] = frame
        self._cache.move_to_end((frame.org_id, frame.id))
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)

    def _header(self, event: TaskEvent, today: dt.date) -> bool:
        """Does the event's message carry its sprint's header: when the event moved a
        figure of it, or is the first this instance renders on a new local `today`
        there (the days left and the chart's today moved with the clock)?"""
        key = (event.org_id, event.sprint_id or 0)
        if moves_header(event) or self._header_days.get(key) != today:
            self._header_days[key] = today
            return True
        return False

    def forget(self, org_id: int) -> None:
        """Some of the organization's events went by unrendered (nobody was listening
        here): what was derived from the ones seen (the charts) may be out of date."""
        for key in [key for key in self._shifts if key[0] == org_id]:
            del self._shifts[key]

    async def _chart(
        self, session: AsyncSession, summary: SprintSummary, org: Organization
    ) -> Burndown:
        """The sprint's burndown: its shifts read again only when an event moved it (its
        cached reading is then dropped: see `_render`) or the day's time zone changed, so
        most events cost no query for it."""
        sprint, tz = summary.sprint, org.time_zone
        key = (sprint.org_id, sprint.id)
        known = self._shifts.get(key)
        if known is None or known[0] != tz:
            # The log's newest id as this read sees it: a render that read earlier (a
            # replay and the fan-out can overlap) must not replace a fresher reading.
            fresh = (tz, org.last_event_id or 0, await load_shifts(session, sprint, tz))
            if known is None or known[0] != tz or fresh[1] >= known[1]:
                self._shifts[key] = fresh
            known = fresh
        self._shifts.move_to_end(key)
        while len(self._shifts) > CACHE_SIZE:
            self._shifts.popitem(last=False)
        return chart(
            sprint,
            total=summary.total,
            remaining=summary.remaining,
            shifts=known[2],
            today=local_today(tz),
        )

    async def _render(self, org_id: int, events: Sequence[TaskEvent]) -> list[Frame]:
        task_ids = {e.task_id for e in events if e.task_id is not None}
        # A move concerns two sprints' boards, which reload their headers: no header
        # rides along with it.
        sprint_ids = {
            e.sprint_id
            for e in events
            if e.sprint_id is not None and not EventType(e.type).moves_tasks
        }
        named = {e.to_sprint_id for e in events if e.to_sprint_id is not None}
        for event in events:
            for sprint_id in (event.sprint_id, event.to_sprint_id):
                if sprint_id is None:
                    continue
                if moves(event, sprint_id) != (0, 0) or EventType(event.type).about_sprint:
                    # Its chart moved: read again when next drawn, here or for a later event.
                    self._shifts.pop((org_id, sprint_id), None)
        async with self.db.read() as session:
            org = await session.get(Organization, org_id)
            assert org is not None
            today = local_today(org.time_zone)
            headed = [e for e in events if e.sprint_id in sprint_ids and self._header(e, today)]
            charted = {e.sprint_id for e in headed}
            tasks = {
                t.id: t
                for t in await session.scalars(_TASKS, {"org_id": org_id, "ids": list(task_ids)})
            }
            summaries: dict[int, SprintSummary] = {}
            for sprint in await session.scalars(
                _SPRINTS, {"org_id": org_id, "ids": list(sprint_ids)}
            ):
                summary = await load_summary(session, sprint, today)
                if sprint.id in charted:  # (its header goes out: see `_header`)
                    summary.burndown = await self._chart(session, summary, org)
                summaries[sprint.id] = summary
            sprint_names: dict[int, str] = {}
            if named:  # (a Result has .keys(): dict() would take it for a mapping)
                params = {"org_id": org_id, "ids": list(named)}
                for sprint_id, name in await session.execute(_SPRINT_NAMES, params):
                    sprint_names[sprint_id] = name
        cards = await self._isolated(
            lambda: self.cards.render(list(tasks.values()), org=org, url_for=self._path_for)
        )
        frames = []
        for event in events:
            card = cards.get(event.task_id) if event.task_id else None
            counted = summaries.get(event.sprint_id) if event.sprint_id else None
            html = compact(
                await self._broadcast(
                    "live/_message.html",
                    event=event,
                    card=Markup(for_broadcast(card)) if card else None,
                    summary=counted if card else None,
                    header=counted if counted and event in headed else None,
                    org=org,
                    toast=toast_text(event, sprint_names),
                    change=change_text(event),
                )
            )
            frames.append(
                Frame(
                    id=event.id,
                    org_id=org_id,
                    sprint_id=event.sprint_id,
                    type=event.type,
                    html=html,
                    sse=sse.encode(data=html, event=event.type, id=event.id),
                    json=event_json(event),
                    to_sprint_id=event.to_sprint_id,
                    for_user_id=event.previous_owner_id if _freed(event) else None,
                )
            )
        return frames

    async def _broadcast(self, template: str, **context: Any) -> str:
        """Render a broadcast (see `_isolated`). Its links are paths built from the app's
        routes (there is no request to build them against)."""
        return await self._isolated(
            lambda: render_template(template, url_for=self._path_for, **context)
        )

    async def _isolated(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run `work` in the app's context alone, in a task with a context of its own, so
        that nothing of a request that happens to be running (its user, its session, its
        `g`) can reach what every viewer receives."""

        async def render() -> T:
            async with self.app.app_context():
                return await work()

        rendering = asyncio.create_task(render(), context=contextvars.Context())
        try:
            return await asyncio.shield(rendering)
        except asyncio.CancelledError:
            rendering.cancel()
            raise

    def _path_for(self, endpoint: str, **values: Any) -> str:
        """`url_for` for broadcasts: the path of a route, with any other values as its
        query string."""
        return self._paths.build(endpoint, values)

    async def presence_notice(self, key: Key, viewers: Sequence[Seen]) -> Notice:
        """The notice every stream of a sprint receives when who is looking changes."""
        org_id, sprint_id = key
        slug = self._slugs.get(org_id)
        if slug is None:
            async with self.db.read() as session:
                found = await session.scalar(
                    select(Organization.slug).where(Organization.id == org_id)
                )
            slug = self._slugs[org_id] = found or ""
        html = compact(
            await self._broadcast(
                "live/_presence_notice.html",
                listed=presence.listed(viewers),
                total=len(viewers),
                org_slug=slug,
                sprint_id=sprint_id,
            )
        )
        payload = {
            "type": presence.EVENT,
            "organizationId": str(org_id),
            "sprintId": str(sprint_id),
            "viewers": [seen.as_json() for seen in viewers],
        }
        return Notice(
            org_id=org_id,
            sprint_id=sprint_id,
            type=presence.EVENT,
            html=html,
            sse=sse.encode(data=html, event=presence.EVENT),
            json=payload,
        )
