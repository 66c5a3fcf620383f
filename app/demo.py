"""Demo data: two organizations with a lively active sprint each (the README's demo people).

Task states are reached through the real life cycle, so every demo task has a history.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.accounts import DEV_ISSUER
from app.db import Database, table_of, utcnow
from app.events.types import EventType
from app.models import Membership, Organization, Role, Sprint, Story, Task, TaskEvent, User
from app.tasks.cycle import BACKLOG, complete_sprint, move_story
from app.tasks.editing import CriterionFields, StoryFields, TaskFields, create_story, create_task
from app.tasks.lifecycle import Action, change_task
from app.tasks.sprints import advance_sprint

# Each task: title, estimate, and the path it walks: (who, [actions]) or None (available).
Plan = tuple[str, int | None, tuple[str, tuple[Action, ...]] | None]

TAKE, START, DONE = Action.TAKE, Action.START, Action.COMPLETE
OWNED_ = (TAKE,)
WORKING = (TAKE, START)
FINISHED = (TAKE, START, DONE)


@dataclass(frozen=True)
class StorySeed:
    title: str
    points: int
    description: str
    criteria: tuple[tuple[str, str, str], ...]
    tasks: tuple[Plan, ...]


@dataclass(frozen=True)
class PastSprint:
    """A sprint that ran and completed before the current one: its unfinished work went
    on to the next past sprint, the last one's to the backlog. `late` is added after it
    started; `dropped` (a story title) went back to the backlog midway."""

    name: str
    goal: str
    stories: tuple[StorySeed, ...]
    late: tuple[str, Plan] | None = None  # (story title, the task)
    dropped: str | None = None


@dataclass(frozen=True)
class OrgSeed:
    slug: str
    name: str
    people: tuple[tuple[str, str, Role], ...]  # email, name, role
    sprint: str
    goal: str
    stories: tuple[StorySeed, ...]
    past: tuple[PastSprint, ...] = ()


def _story(title: str, points: int, tasks: tuple[Plan, ...]) -> StorySeed:
    """A past sprint's story: one criterion is enough for the demo."""
    return StorySeed(title, points, "", (("a team member", "it is done", "it works"),), tasks)


ACME_PAST = (
    PastSprint(
        name="Sprint 12 — Foundations",
        goal="A board people can sign in to and read.",
        stories=(
            _story(
                "Read the board",
                5,
                (
                    ("Board page layout", 3, ("alice@example.com", FINISHED)),
                    ("Cards with owners", 2, ("bob@example.com", FINISHED)),
                    ("Empty states", 1, ("carol@example.com", FINISHED)),
                ),
            ),
            _story(
                "Take a task",
                3,
                (
                    ("Take and release buttons", 2, ("bob@example.com", FINISHED)),
                    ("Refuse a task someone holds", 2, ("carol@example.com", FINISHED)),
                ),
            ),
            _story(
                "Sprint header",
                3,
                (
                    ("Progress bar", 2, ("alice@example.com", FINISHED)),
                    ("Days left", 1, ("carol@example.com", WORKING)),
                    ("Story count", 1, None),
                ),
            ),
            _story(
                "Keyboard shortcuts",
                2,
                (
                    ("Shortcut keys on cards", 3, ("bob@example.com", FINISHED)),
                    ("Shortcut help dialog", 2, ("alice@example.com", FINISHED)),
                ),
            ),
        ),
        late=("Take a task", ("Say who holds a task", 1, ("carol@example.com", FINISHED))),
    ),
    PastSprint(
        name="Sprint 13 — Working the board",
        goal="Move work along without leaving the board.",
        stories=(
            _story(
                "Start, pause and complete",
                5,
                (
                    ("Start and pause", 2, ("bob@example.com", FINISHED)),
                    ("Complete with a time", 2, ("carol@example.com", FINISHED)),
                    ("Done column", 1, ("alice@example.com", FINISHED)),
                ),
            ),
            _story(
                "Drag between columns",
                5,
                (
                    ("Drag a card to a column", 5, ("bob@example.com", FINISHED)),
                    ("Refuse a drop that breaks the rules", 3, ("carol@example.com", FINISHED)),
                ),
            ),
            _story(
                "Task history",
                2,
                (
                    ("History list on the task page", 2, ("alice@example.com", FINISHED)),
                    ("Times in the viewer's zone", 1, ("bob@example.com", OWNED_)),
                ),
            ),
            _story(
                "Export the board",
                3,
                (
                    ("CSV of the sprint", 3, None),
                    ("Choose the columns", 2, None),
                ),
            ),
        ),
        dropped="Export the board",
    ),
)

ACME = OrgSeed(
    slug="acme",
    name="Acme",
    people=(
        ("alice@example.com", "Alice Archer", Role.OWNER),
        ("bob@example.com", "Bob Baker", Role.MEMBER),
        ("carol@example.com", "Carol Chen", Role.MEMBER),
        ("victor@example.com", "Victor Vance", Role.VIEWER),
    ),
    sprint="Sprint 14 — Live board",
    goal="Everyone sees every change at once, and nobody refreshes again.",
    stories=(
        StorySeed(
            "Sign in with the company account",
            5,
            "People sign in through our identity provider and land on their team's board.",
            (
                ("an invited email", "I sign in through the provider", "I land on my board"),
                ("someone nobody invited", "they sign in", "they see no organization"),
            ),
            (
                ("Configure OIDC discovery", 3, ("alice@example.com", FINISHED)),
                ("Write the callback handler", 5, ("bob@example.com", WORKING)),
                ("Accept invitations on first sign-in", 3, None),
                ("Sign out everywhere", 2, ("carol@example.com", OWNED_)),
            ),
        ),
        StorySeed(
            "See teammates' changes live",
            8,
            "When anyone changes a task, every open board shows it within a second.",
            (
                ("two people on one board", "one takes a task", "the other sees it at once"),
                ("a dropped connection", "it comes back", "no change is missed"),
                ("a change by someone else", "it arrives", "a quiet toast names them"),
            ),
            (
                ("Write API tests", 4, ("bob@example.com", FINISHED)),
                ("SSE endpoint with resume", 8, ("carol@example.com", WORKING)),
                ("Toast for others' changes", 3, None),
                ("Connection indicator", 2, ("alice@example.com", OWNED_)),
                ("Replay from the event log", 5, ("bob@example.com", OWNED_)),
            ),
        ),
        StorySeed(
            "Filter the board",
            3,
            "Find my work and what is free to pick up, without scrolling.",
            (("a busy sprint", "I choose “mine”", "only my tasks are shown"),),
            (
                ("Status filter chips", 2, ("carol@example.com", FINISHED)),
                ("Mine and available filters", 3, None),
                ("Counts per group", 2, ("alice@example.com", WORKING)),
                ("Keep filters in the URL", 1, None),
            ),
        ),
    ),
    past=ACME_PAST,
)


GLOBEX = OrgSeed(
    slug="globex",
    name="Globex",
    people=(("dave@example.com", "Dave Dunn", Role.OWNER),),
    sprint="Sprint 3 — Onboarding",
    goal="A new customer is productive on day one.",
    stories=(
        StorySeed(
            "Welcome tour",
            3,
            "A short tour on the first visit.",
            (("a first visit", "the board opens", "a tour explains the columns"),),
            (
                ("Draft the tour copy", 2, ("dave@example.com", FINISHED)),
                ("Tour overlay component", 5, ("dave@example.com", WORKING)),
                ("Skip and resume the tour", 3, None),
                ("Track tour completion", 2, None),
            ),
        ),
        StorySeed(
            "Import from spreadsheets",
            5,
            "Bring an existing backlog in from CSV.",
            (("a CSV with a title column", "I import it", "each row becomes a task"),),
            (
                ("CSV parser", 3, ("dave@example.com", FINISHED)),
                ("Column mapping screen", 5, ("dave@example.com", OWNED_)),
                ("Import preview", 3, None),
                ("Report rejected rows", 2, None),
            ),
        ),
        StorySeed(
            "Invite the team",
            2,
            "Owners invite teammates by email.",
            (("an owner", "they invite an email", "that person can sign in"),),
            (
                ("Invitation form", 2, ("dave@example.com", FINISHED)),
                ("Role picker", 1, None),
                ("Resend an invitation", 1, ("dave@example.com", WORKING)),
                ("Remove a member", 2, None),
            ),
        ),
    ),
)


# `demo --big N`: an organization whose one active sprint holds N tasks, for trying (and
# benchmarking) a big board. Its work is generated, not written out: 20 stories, tasks
# dealt round them, every status represented.
BIG_SLUG = "bigco"
BIG_PEOPLE = (
    ("olive@example.com", "Olive Okafor", Role.OWNER),
    ("mia@example.com", "Mia Moreau", Role.MEMBER),
    ("max@example.com", "Max Meyer", Role.MEMBER),
)
_BIG_AREAS = (
    "Checkout", "Search", "Invoices", "Onboarding", "Notifications", "Reports", "Settings",
    "Mobile app", "Permissions", "Audit log", "Billing", "Imports", "Exports", "Calendar",
    "Comments", "Attachments", "Dashboards", "Single sign-on", "Webhooks", "Help center",
)  # fmt: skip
_BIG_WORK = (
    "Design the {} screen", "Write the {} API", "Test {} edge cases", "Document {}",
    "Speed up {}", "Fix {} on phones", "Review {} copy", "Add {} metrics",
    "Translate {}", "Migrate {} data",
)  # fmt: skip
# Of every ten tasks: four up for grabs, two owned, two in progress, two done.
_BIG_PATHS = (None, None, None, None, OWNED_, OWNED_, WORKING, WORKING, FINISHED, FINISHED)


def big_seed(tasks: int) -> OrgSeed:
    """Bigco's seed: `tasks` tasks dealt over 20 stories, held by its three people."""
    members = [email for email, _name, _role in BIG_PEOPLE]
    stories = []
    for number, area in enumerate(_BIG_AREAS):
        count = tasks // len(_BIG_AREAS) + (1 if number < tasks % len(_BIG_AREAS) else 0)
        plans: list[Plan] = []
        for i in range(count):
            n = i * len(_BIG_AREAS) + number  # the task's number over the whole sprint
            # (Dealt along the story and shifted per story: each story holds every status.)
            path = _BIG_PATHS[(i + number) % len(_BIG_PATHS)]
            title = f"{_BIG_WORK[i % len(_BIG_WORK)].format(area.lower())} ({i + 1})"
            plans.append((title, 1 + n % 8, None if path is None else (members[n % 3], path)))
        stories.append(
            StorySeed(
                area,
                1 + number % 8,
                f"Everything the {area.lower()} area needs this sprint.",
                (("a customer", f"I use {area.lower()}", "it works as promised"),),
                tuple(plans),
            )
        )
    return OrgSeed(
        slug=BIG_SLUG,
        name="Bigco",
        people=BIG_PEOPLE,
        sprint="Sprint 40",
        goal=f"Ship {tasks:,} tasks across twenty areas.",
        stories=tuple(stories),
    )


async def load_demo(
    db: Database,
    *,
    only_if_empty: bool = False,
    big: int | None = None,
    progress: Callable[[str], None] = print,
) -> bool:
    """Create the demo organizations that are missing (with `big`, Bigco too, its sprint
    holding that many tasks); True if anything was created."""
    async with db.read() as session:
        existing = set(await session.scalars(select(Organization.slug)))
        count = await session.scalar(select(func.count(Organization.id)))
    if only_if_empty and count:
        progress("the database already has organizations; demo data not loaded")
        return False
    created = False
    seeds = [ACME, GLOBEX] + ([big_seed(big)] if big is not None else [])
    for seed in seeds:
        if seed.slug in existing:
            progress(f"{seed.slug}: already there")
            continue
        stories, tasks = len(seed.stories), sum(len(story.tasks) for story in seed.stories)
        progress(f"{seed.slug}: creating people, a sprint, {stories} stories and {tasks:,} tasks…")
        await db.write(lambda s, seed=seed: _create(s, seed, progress))  # type: ignore[misc]
        created = True
    return created


async def _user(session: AsyncSession, email: str, name: str) -> User:
    user = await session.scalar(
        select(User).where(User.oidc_issuer == DEV_ISSUER, User.oidc_subject == email)
    )
    if user is None:
        user = User(oidc_issuer=DEV_ISSUER, oidc_subject=email, email=email, name=name)
        session.add(user)
        await session.flush()
    return user


async def _create(
    session: AsyncSession, seed: OrgSeed, progress: Callable[[str], None] | None = None
) -> None:
    org = Organization(slug=seed.slug, name=seed.name)
    session.add(org)
    await session.flush()
    people: dict[str, tuple[User, Role]] = {}
    for email, name, role in seed.people:
        user = await _user(session, email, name)
        session.add(Membership(org_id=org.id, user_id=user.id, role=role.value))
        people[email] = (user, role)
    await session.flush()

    today = dt.datetime.now(dt.UTC).date()
    owner = next(user for user, role in people.values() if role is Role.OWNER)
    # The current sprint first (it keeps the lowest ids), planned; it starts once the
    # past sprints have run their course.
    sprint = Sprint(
        org_id=org.id,
        name=seed.sprint,
        goal=seed.goal,
        start_date=today - dt.timedelta(days=5),
        end_date=today + dt.timedelta(days=9),
    )
    session.add(sprint)
    await session.flush()
    current = await _last_id(session, org.id)
    for number, story_seed in enumerate(seed.stories, 1):
        await _add_story(session, org, sprint, story_seed, owner, people)
        if progress is not None and len(seed.stories) > 10:  # (a big seed: say how far)
            progress(f"  {number}/{len(seed.stories)} stories")
    clock = Clock(org.id)
    clock.spread_sprint(current, await _last_id(session, org.id), sprint.start_date)

    # The past sprints, two weeks each, ending the day before the current one began.
    length = dt.timedelta(days=13)
    starts = [
        sprint.start_date - dt.timedelta(days=14 * (len(seed.past) - i))
        for i in range(len(seed.past))
    ]
    past: list[Sprint] = []
    for past_seed, start in zip(seed.past, starts, strict=True):
        ran = Sprint(
            org_id=org.id,
            name=past_seed.name,
            goal=past_seed.goal,
            start_date=start,
            end_date=start + length,
        )
        session.add(ran)
        past.append(ran)
    await session.flush()
    for i, (past_seed, ran) in enumerate(zip(seed.past, past, strict=True)):
        await _run_past_sprint(
            session,
            org,
            ran,
            past_seed,
            owner,
            people,
            clock,
            carry_to=str(past[i + 1].id) if i + 1 < len(past) else BACKLOG,
        )
    mark = await _last_id(session, org.id)
    await advance_sprint(
        session, org_id=org.id, sprint_id=sprint.id, actor=owner, role=Role.OWNER, today=today
    )
    clock.at(mark, await _last_id(session, org.id), _morning(sprint.start_date, 8))
    await clock.apply(session)


async def _last_id(session: AsyncSession, org_id: int) -> int:
    return int(
        await session.scalar(select(Organization.last_event_id).where(Organization.id == org_id))
        or 0
    )


async def _add_story(
    session: AsyncSession,
    org: Organization,
    sprint: Sprint,
    story_seed: StorySeed,
    owner: User,
    people: dict[str, tuple[User, Role]],
    *,
    work: bool = True,
) -> list[tuple[int, tuple[str, tuple[Action, ...]] | None]]:
    """Add a story and its tasks; walk each task's path now (`work`), or return them."""
    story = await create_story(
        session,
        org_id=org.id,
        sprint=sprint,
        fields=StoryFields(
            title=story_seed.title,
            description=story_seed.description,
            points=story_seed.points,
            criteria=[CriterionFields(*c) for c in story_seed.criteria],
        ),
        actor=owner,
        role=Role.OWNER,
    )
    paths = []
    for number, (title, estimate, path) in enumerate(story_seed.tasks):
        refs = [f"AC{1 + number % len(story_seed.criteria)}"]
        task, _ = await create_task(
            session,
            story=story,
            fields=TaskFields(title=title, ac_refs=refs, estimate_hours=estimate),
            actor=owner,
            role=Role.OWNER,
        )
        if work:
            await _walk(session, org, task.id, path, people)
        else:
            paths.append((task.id, path))
    return paths


async def _walk(
    session: AsyncSession,
    org: Organization,
    task_id: int,
    path: tuple[str, tuple[Action, ...]] | None,
    people: dict[str, tuple[User, Role]],
) -> None:
    if path is None:
        return
    email, actions = path
    user, _role = people[email]
    for action in actions:
        await change_task(session, actor=user, org=org.id, task_id=task_id, action=action)


async def _run_past_sprint(
    session: AsyncSession,
    org: Organization,
    ran: Sprint,
    seed: PastSprint,
    owner: User,
    people: dict[str, tuple[User, Role]],
    clock: Clock,
    *,
    carry_to: str,
) -> None:
    """Plan a past sprint, start it, work it (a task added late, a story dropped back to
    the backlog midway), review and complete it, all through the real operations; the
    clock then spreads what happened over its days."""
    mark = await _last_id(session, org.id)
    paths = []
    for story_seed in seed.stories:
        paths += await _add_story(session, org, ran, story_seed, owner, people, work=False)
    clock.at(
        mark, await _last_id(session, org.id), _morning(ran.start_date, 8) - dt.timedelta(days=1)
    )
    today = dt.datetime.now(dt.UTC).date()
    mark = await _last_id(session, org.id)
    await advance_sprint(
        session, org_id=org.id, sprint_id=ran.id, actor=owner, role=Role.OWNER, today=today
    )
    clock.at(mark, await _last_id(session, org.id), _morning(ran.start_date, 9))
    mark = await _last_id(session, org.id)
    for task_id, path in paths:
        await _walk(session, org, task_id, path, people)
    if seed.late is not None:
        story_title, (title, estimate, path) = seed.late
        story = await session.scalar(
            select(Story).where(Story.sprint_id == ran.id, Story.title == story_title)
        )
        assert story is not None
        task, _ = await create_task(
            session,
            story=story,
            fields=TaskFields(title=title, estimate_hours=estimate),
            actor=owner,
            role=Role.OWNER,
        )
        await _walk(session, org, task.id, path, people)
    if seed.dropped is not None:
        story = await session.scalar(
            select(Story).where(Story.sprint_id == ran.id, Story.title == seed.dropped)
        )
        assert story is not None
        await move_story(
            session,
            org_id=org.id,
            story_id=story.id,
            to_sprint_id=None,
            actor=owner,
            role=Role.OWNER,
        )
    clock.at(
        mark,
        await _last_id(session, org.id),
        _morning(ran.start_date, 10),
        _morning(ran.end_date, 16),
    )
    mark = await _last_id(session, org.id)
    await advance_sprint(
        session, org_id=org.id, sprint_id=ran.id, actor=owner, role=Role.OWNER, today=today
    )
    await complete_sprint(
        session,
        org_id=org.id,
        sprint_id=ran.id,
        carry_to=carry_to,
        actor=owner,
        role=Role.OWNER,
        time_zone=org.time_zone or "UTC",
    )
    clock.at(
        mark,
        await _last_id(session, org.id),
        _morning(ran.end_date, 17),
        _morning(ran.end_date, 18),
    )
    ran.completed_at = _morning(ran.end_date, 18)


def _morning(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), dt.UTC)


class Clock:
    """Gives the demo a past: everything above happens now, in the order it is logged;
    only the clock moves. Each span of event ids is spread over a stretch of time."""

    def __init__(self, org_id: int) -> None:
        self.org_id = org_id
        self.when: dict[int, dt.datetime] = {}

    def at(self, after: int, upto: int, start: dt.datetime, end: dt.datetime | None = None) -> None:
        """Events `after` < id ≤ `upto` happened from `start` to `end` (or all at `start`,
        a minute apart)."""
        ids = range(after + 1, upto + 1)
        if end is None:
            self.when |= {i: start + dt.timedelta(minutes=n) for n, i in enumerate(ids)}
            return
        step = (end - start) / max(1, len(ids))
        self.when |= {i: start + step * n for n, i in enumerate(ids)}

    def spread_sprint(self, after: int, upto: int, start_date: dt.date) -> None:
        """The current sprint: written on the eve of day one, worked on since."""
        self.pending = (after, upto, start_date)

    async def apply(self, session: AsyncSession) -> None:
        after, upto, start_date = self.pending
        events = list(
            await session.scalars(
                select(TaskEvent)
                .where(TaskEvent.org_id == self.org_id, TaskEvent.id > after, TaskEvent.id <= upto)
                .order_by(TaskEvent.id)
            )
        )
        planned = [e for e in events if e.type in (EventType.STORY_CREATED, EventType.TASK_CREATED)]
        work = [e for e in events if e not in planned]
        eve = _morning(start_date, 8) - dt.timedelta(days=1)
        first = _morning(start_date, 9) + dt.timedelta(minutes=30)
        last = min(utcnow(), _morning(utcnow().date(), 9))
        step = (last - first) / max(1, len(work))
        self.when |= {e.id: eve + dt.timedelta(minutes=i) for i, e in enumerate(planned)}
        self.when |= {e.id: first + step * i for i, e in enumerate(work)}
        event_table = table_of(TaskEvent)
        for event_id, at in self.when.items():
            await session.execute(
                update(event_table)
                .where(event_table.c.org_id == self.org_id, event_table.c.id == event_id)
                .values(created_at=at)
            )
        # The tasks' own timestamps follow their events.
        all_events = list(
            await session.scalars(select(TaskEvent).where(TaskEvent.org_id == self.org_id))
        )
        for task in await session.scalars(select(Task).where(Task.org_id == self.org_id)):
            mine = sorted((e for e in all_events if e.task_id == task.id), key=lambda e: e.id)
            task.created_at = self.when[mine[0].id]
            task.updated_at = self.when[mine[-1].id]
            taken = [e for e in mine if e.type == EventType.OWNERSHIP_TAKEN]
            done = [e for e in mine if e.new_status == "completed"]
            task.owned_at = self.when[taken[-1].id] if task.owner_id else None
            task.completed_at = self.when[done[-1].id] if done else None
        await session.flush()
