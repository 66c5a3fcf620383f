"""The burndown: its series against an independent day-by-day replay of a generated event
history (Hypothesis), then the real thing: read from the log on a real database, in the
organization's time zone, the same in the header, the table and the API."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st
from quart import Quart
from sqlalchemy import event, text, update

from app.auth.accounts import set_time_zone
from app.db import Database, table_of
from app.live.render import Renderer
from app.models import Organization, Role, Sprint, TaskEvent
from app.tasks.burndown import Shift, chart, moves
from app.tasks.lifecycle import Action
from app.timefmt import local_today
from tests.factories import Scene, act, token_for

ZONES = ["UTC", "Asia/Tokyo", "Pacific/Kiritimati", "Pacific/Pago_Pago", "America/Los_Angeles"]
START = dt.date(2026, 3, 2)


@dataclass(frozen=True)
class History:
    """A sprint, the moments its tasks were created, completed and reopened, and now."""

    length: int  # days
    zone: str
    now: dt.datetime  # UTC
    tasks: list[list[dt.datetime]]  # per task: created, then completed / reopened in turn

    def sprint(self) -> Sprint:
        return Sprint(
            id=1, org_id=1, start_date=START, end_date=START + dt.timedelta(days=self.length - 1)
        )

    def events(self) -> list[tuple[dt.datetime, str, str | None, str | None]]:
        """(when, type, old status, new status) of every event, as the log would hold them."""
        found = []
        for moments in self.tasks:
            found.append((moments[0], "task_created", None, "available"))
            for turn, moment in enumerate(moments[1:]):
                if turn % 2 == 0:
                    found.append((moment, "status_changed", "inprogress", "completed"))
                else:  # a reopening, should the life cycle ever allow one
                    found.append((moment, "status_changed", "completed", "owned"))
        return sorted(found)


@st.composite
def histories(draw: st.DrawFn) -> History:
    length = draw(st.integers(1, 15))
    zone = draw(st.sampled_from(ZONES))
    early = dt.datetime.combine(START - dt.timedelta(days=3), dt.time(), dt.UTC)
    span = (length + 6) * 24  # hours: from before the sprint to after it
    now = early + dt.timedelta(hours=draw(st.integers(0, span)), minutes=draw(st.integers(0, 59)))
    tasks = []
    for _ in range(draw(st.integers(0, 8))):
        offsets = sorted(
            draw(
                st.lists(st.integers(0, int((now - early).total_seconds())), min_size=1, max_size=5)
            )
        )
        tasks.append([early + dt.timedelta(seconds=s) for s in offsets])
    return History(length, zone, now, tasks)


def replayed(history: History) -> list[int | None]:
    """The series the slow way: for each day, replay everything up to that day's end."""
    tz = ZoneInfo(history.zone)
    today = history.now.astimezone(tz).date()
    series: list[int | None] = []
    for index in range(history.length):
        day = START + dt.timedelta(days=index)
        if day > today:
            series.append(None)
            continue
        end_of_day = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tz)
        cutoff = min(end_of_day, history.now)
        open_tasks = 0
        for moments in history.tasks:
            # An event at the stroke of midnight belongs to the next day, as in the app.
            seen = [m for m in moments if m < end_of_day and m <= cutoff]
            # Created and then an even number of turns (done, reopened, …): not done.
            if seen and len(seen) % 2 == 1:
                open_tasks += 1
        series.append(open_tasks)
    return series


def chart_of(history: History) -> Any:
    """The chart as the app computes it: from now's counts and the log's shifts."""
    tz = ZoneInfo(history.zone)
    total = len(history.tasks)
    remaining = sum(1 for moments in history.tasks if len(moments) % 2 == 1)
    shifts = []
    for when, kind, old, new in history.events():
        event = SimpleNamespace(
            type=kind,
            old_status=old,
            new_status=new,
            sprint_id=1,
            to_sprint_id=None,
            task_ids=None,
            done_count=None,
        )
        delta_remaining, delta_total = moves(event, 1)
        shifts.append(Shift(when.astimezone(tz).date(), delta_remaining, delta_total))
    return chart(
        history.sprint(),
        total=total,
        remaining=remaining,
        shifts=shifts,
        today=history.now.astimezone(tz).date(),
    )


@settings(max_examples=400, deadline=None)
@given(histories())
def test_the_series_equals_a_day_by_day_replay_of_the_log(history: History) -> None:
    burndown = chart_of(history)
    assert [d.remaining for d in burndown.days] == replayed(history)
    assert burndown.series == [v for v in replayed(history) if v is not None]
    # Ideal: every task on day one, none on the last day, a straight line between.
    assert burndown.days[-1].ideal == 0
    if history.length > 1:
        assert burndown.days[0].ideal == len(history.tasks)


def at(day: int, hour: int, zone: str = "UTC") -> dt.datetime:
    """Day `day` of the sprint (1 is its first), at `hour` o'clock in `zone`, in UTC."""
    local = dt.datetime.combine(START + dt.timedelta(days=day - 1), dt.time(hour), ZoneInfo(zone))
    return local.astimezone(dt.UTC)


def series(history: History) -> list[int | None]:
    return [d.remaining for d in chart_of(history).days]


def test_days_without_changes_carry_the_last_figure() -> None:
    history = History(5, "UTC", at(5, 12), [[at(1, 9), at(2, 10)], [at(1, 9)], [at(1, 9)]])
    assert series(history) == [3, 2, 2, 2, 2]


def test_a_task_added_mid_sprint_counts_from_its_day() -> None:
    history = History(4, "UTC", at(4, 12), [[at(1, 9)], [at(3, 15)]])
    assert series(history) == [1, 1, 2, 2]
    assert chart_of(history).days[0].ideal == 2  # the ideal starts from every task now


def test_a_sprint_that_has_not_begun_has_no_figures_yet() -> None:
    history = History(
        3, "UTC", at(1, 9) - dt.timedelta(days=2), [[at(1, 9) - dt.timedelta(days=3)]]
    )
    burndown = chart_of(history)
    assert series(history) == [None, None, None]
    assert burndown.series == [] and burndown.current is None
    assert burndown.sentence().startswith("The sprint has not begun")


def test_a_sprint_that_has_ended_keeps_its_last_day_and_its_velocity() -> None:
    tasks = [[at(1, 9), at(2, 11)], [at(1, 9), at(3, 16)], [at(1, 9)], [at(1, 9), at(6, 10)]]
    history = History(3, "UTC", at(6, 12), tasks)
    burndown = chart_of(history)
    # The task done two days after the end still counts as open on the last day.
    assert series(history) == [4, 3, 2]
    assert burndown.finished and burndown.done_at_end == 2
    assert burndown.sentence().startswith("The sprint has ended: 2 of 4 tasks remained")


def test_the_day_ends_at_the_organizations_midnight_not_utcs() -> None:
    # Completed at 20:00 UTC on day 2: already day 3 in Tokyo (UTC+9).
    done = at(2, 20)
    tasks = [[at(1, 0, "Asia/Tokyo"), done], [at(1, 0, "Asia/Tokyo")]]
    utc = History(4, "UTC", at(4, 12), tasks)
    tokyo = History(4, "Asia/Tokyo", at(4, 12), tasks)
    assert series(utc) == [2, 1, 1, 1]
    assert series(tokyo) == [2, 2, 1, 1]


# --- on a real database ------------------------------------------------------------------


async def backdate(db: Database, org_id: int, event_id: int, when: dt.datetime) -> None:
    events = table_of(TaskEvent)
    await db.write(
        lambda s: s.execute(
            update(events)
            .where(events.c.org_id == org_id, events.c.id == event_id)
            .values(created_at=when)
        )
    )


async def newest_event(db: Database, org_id: int) -> int:
    async with db.read() as s:
        return int(
            await s.scalar(
                text("SELECT last_event_id FROM organization WHERE id = :id"), {"id": org_id}
            )
        )


async def created_on_day_one(db: Database, scene: Scene) -> None:
    """Move the creation of every acme task to 09:00 UTC on the sprint's first day."""
    acme = scene.acme
    for task in acme.tasks:
        async with db.read() as s:
            created = await s.scalar(
                text("SELECT id FROM task_event WHERE org_id = :o AND task_id = :t"),
                {"o": acme.org.id, "t": task.id},
            )
        when = dt.datetime.combine(acme.sprint.start_date, dt.time(9), dt.UTC)
        await backdate(db, acme.org.id, created, when)


async def test_the_chart_is_read_from_the_log_and_agrees_with_the_header(
    app: Quart, db: Database, scene: Scene, sign_in_as: Any
) -> None:
    """Scene: acme's sprint began two days ago, six tasks created then; two are
    completed now, one of them recorded as yesterday."""
    acme = scene.acme
    org_id, sprint = acme.org.id, acme.sprint
    await created_on_day_one(db, scene)
    first, second = acme.tasks[0], acme.tasks[1]
    for task in (first, second):
        await act(db, acme, task, Action.TAKE, scene.bob)
        await act(db, acme, task, Action.COMPLETE, scene.bob)
    yesterday = dt.datetime.combine(local_today("UTC") - dt.timedelta(days=1), dt.time(15), dt.UTC)
    await backdate(db, org_id, await newest_event(db, org_id) - 2, yesterday)  # first's completion

    bob = await sign_in_as(scene.bob)
    page = await (await bob.get(f"/o/acme/sprints/{sprint.id}")).get_data(as_text=True)
    figure = re.search(r'<figure id="burndown"[^>]*>', page)
    assert figure is not None
    attrs = dict(re.findall(r'data-([a-z]+)="([^"]*)"', figure.group(0)))
    header = dict(re.findall(r'data-(done|total)="(\d+)"', page.split('id="sprint-header"')[1]))
    # Day one and yesterday (six, then five: one completion happened yesterday) and today
    # (four: the second completion today); today's figure is the header's Y − X.
    assert attrs["series"] == "6,5,4"
    assert int(attrs["remaining"]) == int(header["total"]) - int(header["done"]) == 4
    assert attrs["total"] == "6" and attrs["days"] == "7"
    # The same numbers in the table, for screen readers and anyone who wants them.
    rows = re.findall(
        r'<th scope="row"><time datetime="([\d-]+)">[^<]*</time></th>\s*<td>([^<]*)</td>', page
    )
    assert [count for _date, count in rows] == ["6", "5", "4", "—", "—", "—", "—"]
    assert 'role="img"' in page and "4 of 6 tasks remain on day 3 of 7" in page

    # The API says the same.
    token = await token_for(db, scene.bob)
    client = app.test_client()
    answer = await client.get(
        f"/api/v1/sprints/{sprint.id}/burndown", headers={"Authorization": f"Bearer {token}"}
    )
    body = await answer.get_json()
    assert body["sprintId"] == str(sprint.id) and body["total"] == 6 and body["remaining"] == 4
    assert [d["remaining"] for d in body["days"]] == [6, 5, 4, None, None, None, None]
    assert body["days"][0]["date"] == sprint.start_date.isoformat()
    assert body["days"][0]["ideal"] == 6 and body["days"][-1]["ideal"] == 0


async def test_the_time_zone_is_the_owners_to_choose_and_moves_the_day_boundary(
    db: Database, scene: Scene, sign_in_as: Any
) -> None:
    acme = scene.acme
    bob, alice = await sign_in_as(scene.bob), await sign_in_as(scene.alice)
    refused = await bob.post(
        "/o/acme/time-zone", form={"time_zone": "Asia/Tokyo", "csrf_token": "test-csrf-token"}
    )
    assert refused.status_code == 403
    bad = await alice.post(
        "/o/acme/time-zone", form={"time_zone": "Mars/Olympus", "csrf_token": "test-csrf-token"}
    )
    assert bad.status_code == 303
    said = await (await alice.get("/o/acme/sprints")).get_data(as_text=True)
    assert "is not a time zone; pick one from the list." in said
    async with db.read() as s:
        assert (await s.get(Organization, acme.org.id)).time_zone == "UTC"  # type: ignore[union-attr]
    done = await alice.post(
        "/o/acme/time-zone", form={"time_zone": "Asia/Tokyo", "csrf_token": "test-csrf-token"}
    )
    assert done.status_code == 303
    async with db.read() as s:
        org = await s.get(Organization, acme.org.id)
        assert org is not None and org.time_zone == "Asia/Tokyo"
    page = await (await alice.get("/o/acme/sprints")).get_data(as_text=True)
    assert '<option value="Asia/Tokyo" selected>' in page


async def test_rendering_an_event_that_cannot_move_the_chart_reads_nothing_for_it(
    app: Quart, db: Database, scene: Scene
) -> None:
    """The header (and its chart) rides along only with an event that moves its figures,
    rendered once for every stream; the chart adds a query only then (a completion, a
    new task)."""
    live = app.extensions["live"]
    renderer = Renderer(app, db)  # its own, so the running fan-out cannot forget for it
    acme = scene.acme
    task = acme.tasks[0]
    statements: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(db.read_engine.sync_engine, "before_cursor_execute", note)
    try:

        async def render_newest() -> list[str]:
            newest = await newest_event(db, acme.org.id)
            events = await live.read_events(acme.org.id, after=newest - 1, limit=1)
            statements.clear()
            await renderer.frames(acme.org.id, events)
            return [s for s in statements if "task_event" in s]

        await act(db, acme, task, Action.TAKE, scene.bob)
        # The day's first message brings the header (the days left may have moved).
        assert len(await render_newest()) == 1
        await act(db, acme, task, Action.RELEASE, scene.bob)
        assert await render_newest() == []  # a give-up: the chart cannot move
        await act(db, acme, task, Action.TAKE, scene.bob)
        assert await render_newest() == []
        await act(db, acme, task, Action.START, scene.bob)
        assert await render_newest() == []
        await act(db, acme, task, Action.COMPLETE, scene.bob)
        assert len(await render_newest()) == 1  # a completion: one bounded query
        # The organization moves its day boundary: the next render reads the chart again.
        await db.write(
            lambda s: s.execute(
                update(Organization)
                .where(Organization.id == acme.org.id)
                .values(time_zone="Asia/Tokyo")
            )
        )
        await act(db, acme, task, Action.REOPEN, scene.bob)
        assert len(await render_newest()) == 1  # read again, for the new day boundary
        await act(db, acme, acme.tasks[1], Action.TAKE, scene.bob)
        assert await render_newest() == []
    finally:
        event.remove(db.read_engine.sync_engine, "before_cursor_execute", note)


async def test_a_team_in_tokyo_counts_its_own_days_not_utcs(
    app: Quart, db: Database, scene: Scene
) -> None:
    """A task completed just after midnight in Tokyo (still the day before in UTC) counts
    on Tokyo's day once the organization says Tokyo, on the database, through the API."""
    acme = scene.acme
    org_id, sprint = acme.org.id, acme.sprint
    await created_on_day_one(db, scene)
    await act(db, acme, acme.tasks[0], Action.TAKE, scene.bob)
    await act(db, acme, acme.tasks[0], Action.COMPLETE, scene.bob)
    tokyo = ZoneInfo("Asia/Tokyo")
    now = dt.datetime.now(dt.UTC)
    midnight = dt.datetime.combine(now.astimezone(tokyo).date(), dt.time(), tokyo)
    moment = midnight + min(dt.timedelta(minutes=1), (now - midnight) / 2)
    await backdate(db, org_id, await newest_event(db, org_id), moment.astimezone(dt.UTC))
    day_before = moment.astimezone(tokyo).date() - dt.timedelta(days=1)
    assert moment.astimezone(dt.UTC).date() == day_before  # in UTC, the completion's day
    index = (day_before - sprint.start_date).days
    token = await token_for(db, scene.bob)

    async def remaining_by_day(zone: str) -> list[int | None]:
        # As an owner does it (which tells every instance's cache of the organization).
        await db.write(lambda s: set_time_zone(s, org_id=org_id, name=zone, role=Role.OWNER))
        answer = await app.test_client().get(
            f"/api/v1/sprints/{sprint.id}/burndown", headers={"Authorization": f"Bearer {token}"}
        )
        return [day["remaining"] for day in (await answer.get_json())["days"]]

    assert (await remaining_by_day("UTC"))[index] == 5
    in_tokyo = await remaining_by_day("Asia/Tokyo")
    assert in_tokyo[index] == 6 and in_tokyo[index + 1] == 5


async def test_another_organizations_sprint_has_no_burndown_for_me(
    app: Quart, db: Database, scene: Scene
) -> None:
    token = await token_for(db, scene.bob)  # bob is in acme, not in globex
    answer = await app.test_client().get(
        f"/api/v1/sprints/{scene.globex.sprint.id}/burndown",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 404
    assert "globex" not in (await answer.get_data(as_text=True)).lower()
