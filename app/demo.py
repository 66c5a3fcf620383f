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
from app.models import Membership, Organization, Role, Sprint, SprintStatus, Task, TaskEvent, User
from app.tasks.editing import CriterionFields, StoryFields, TaskFields, create_story, create_task
from app.tasks.lifecycle import Action, change_task

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
class OrgSeed:
    slug: str
    name: str
    people: tuple[tuple[str, str, Role], ...]  # email, name, role
    sprint: str
    goal: str
    stories: tuple[StorySeed, ...]


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


async def load_demo(
    db: Database, *, only_if_empty: bool = False, progress: Callable[[str], None] = print
) -> bool:
    """Create the demo organizations that are missing; True if anything was created."""
    async with db.read() as session:
        existing = set(await session.scalars(select(Organization.slug)))
        count = await session.scalar(select(func.count(Organization.id)))
    if only_if_empty and count:
        progress("the database already has organizations; demo data not loaded")
        return False
    created = False
    for seed in (ACME, GLOBEX):
        if seed.slug in existing:
            progress(f"{seed.slug}: already there")
            continue
        progress(f"{seed.slug}: creating people, a sprint, stories and tasks…")
        await db.write(lambda s, seed=seed: _create(s, seed))  # type: ignore[misc]
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


async def _create(session: AsyncSession, seed: OrgSeed) -> None:
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
    sprint = Sprint(
        org_id=org.id,
        name=seed.sprint,
        goal=seed.goal,
        start_date=today - dt.timedelta(days=5),
        end_date=today + dt.timedelta(days=9),
        status=SprintStatus.ACTIVE.value,
    )
    session.add(sprint)
    await session.flush()

    owner = next(user for user, role in people.values() if role is Role.OWNER)
    for story_seed in seed.stories:
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
        for number, (title, estimate, path) in enumerate(story_seed.tasks):
            refs = [f"AC{1 + number % len(story_seed.criteria)}"]
            task, _ = await create_task(
                session,
                story=story,
                fields=TaskFields(title=title, ac_refs=refs, estimate_hours=estimate),
                actor=owner,
                role=Role.OWNER,
            )
            if path is None:
                continue
            email, actions = path
            user, _role = people[email]
            for action in actions:
                await change_task(session, actor=user, org=org.id, task_id=task.id, action=action)
    await _spread_over_the_sprint(session, org, sprint)


async def _spread_over_the_sprint(session: AsyncSession, org: Organization, sprint: Sprint) -> None:
    """Give the demo a past: the stories and tasks written on the eve of day one, the
    work since spread over the days the sprint has run, so its burndown has a shape.

    Everything above happened just now, in the order it is logged; only the clock moves.
    """
    events = list(
        await session.scalars(
            select(TaskEvent).where(TaskEvent.org_id == org.id).order_by(TaskEvent.id)
        )
    )
    planned = [e for e in events if e.type in (EventType.STORY_CREATED, EventType.TASK_CREATED)]
    work = [e for e in events if e not in planned]
    eve = dt.datetime.combine(sprint.start_date, dt.time(8), dt.UTC) - dt.timedelta(days=1)
    first = dt.datetime.combine(sprint.start_date, dt.time(9, 30), dt.UTC)
    last = min(utcnow(), dt.datetime.combine(utcnow().date(), dt.time(9), dt.UTC))
    step = (last - first) / max(1, len(work))
    when = {e.id: eve + dt.timedelta(minutes=i) for i, e in enumerate(planned)}
    when |= {e.id: first + step * i for i, e in enumerate(work)}
    event_table = table_of(TaskEvent)
    for event in events:
        await session.execute(
            update(event_table)
            .where(event_table.c.org_id == org.id, event_table.c.id == event.id)
            .values(created_at=when[event.id])
        )
    # The tasks' own timestamps follow their events.
    for task in await session.scalars(select(Task).where(Task.org_id == org.id)):
        mine = [e for e in events if e.task_id == task.id]
        task.created_at = when[mine[0].id]
        task.updated_at = when[mine[-1].id]
        taken = [e for e in mine if e.type == EventType.OWNERSHIP_TAKEN]
        done = [e for e in mine if e.new_status == "completed"]
        task.owned_at = when[taken[-1].id] if task.owner_id else None
        task.completed_at = when[done[-1].id] if done else None
    await session.flush()
