"""The `sprintboard` command, run as a user runs it: a real process on a real database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from app.auth.accounts import token_use
from app.db import Database
from app.models import Invitation, Membership, Organization, Sprint, Task, User


def sprintboard(database_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "DATABASE_URL": database_url, **env}
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_db_upgrade_then_demo_is_idempotent(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh' / 'board.db'}"
    assert sprintboard(url, "db", "upgrade").returncode == 0
    first = sprintboard(url, "demo")
    assert first.returncode == 0 and "demo data loaded" in first.stderr
    again = sprintboard(url, "demo")
    assert again.returncode == 0 and "already present" in again.stderr
    empty_only = sprintboard(url, "demo", "--if-empty")
    assert empty_only.returncode == 0 and "not loaded" in empty_only.stderr


async def test_demo_data_is_what_the_contract_promises(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"
    assert sprintboard(url, "db", "upgrade").returncode == 0
    assert sprintboard(url, "demo").returncode == 0
    db = Database(url)
    try:
        async with db.read() as s:
            roles = {
                (m.organization.slug, m.user.email): m.role
                for m in await s.scalars(select(Membership))
            }
            assert roles == {
                ("acme", "alice@example.com"): "owner",
                ("acme", "bob@example.com"): "member",
                ("acme", "carol@example.com"): "member",
                ("acme", "victor@example.com"): "viewer",
                ("globex", "dave@example.com"): "owner",
            }
            for org in await s.scalars(select(Organization)):
                sprints = list(await s.scalars(select(Sprint).where(Sprint.org_id == org.id)))
                active = [sp for sp in sprints if sp.status == "active"]
                assert len(active) == 1
                if org.slug == "acme":  # velocity means something on the first run
                    completed = [sp for sp in sprints if sp.status == "completed"]
                    assert len(completed) >= 2 and all(sp.report for sp in completed)
                    assert all(sp.report["final"] for sp in completed)
                tasks = list(
                    await s.scalars(
                        select(Task).where(Task.org_id == org.id, Task.sprint_id == active[0].id)
                    )
                )
                stories = {t.story_id for t in tasks}
                statuses = [t.status for t in tasks]
                assert len(stories) >= 3 and len(tasks) >= 12
                assert set(statuses) == {"available", "owned", "inprogress", "completed"}
                assert statuses.count("available") >= 2
                contributors = {
                    email
                    for (slug, email), role in roles.items()
                    if slug == org.slug and role != "viewer"
                }
                owners = {t.owner.email for t in tasks if t.owner}
                assert contributors <= owners
    finally:
        await db.close()


async def test_org_member_and_token_commands(database_url: str):
    created = sprintboard(
        database_url, "org", "create", "initech", "Initech", "--owner", "peter@example.com"
    )
    assert created.returncode == 0, created.stderr
    invited = sprintboard(
        database_url, "member", "add", "initech", "milton@example.com", "--role", "viewer"
    )
    assert invited.returncode == 0 and "invited as viewer" in invited.stderr
    db = Database(database_url)
    try:
        async with db.read() as s:
            invitations = {(i.email, i.role) for i in await s.scalars(select(Invitation))}
        assert invitations == {("peter@example.com", "owner"), ("milton@example.com", "viewer")}
        # A token needs a person who has signed in; make one as sign-in would.
        from app.auth.accounts import sign_in_user

        await db.write(
            lambda s: sign_in_user(
                s, issuer="urn:test", subject="p", email="peter@example.com", name="Peter"
            )
        )
        token = sprintboard(database_url, "token", "create", "peter@example.com")
        assert token.returncode == 0, token.stderr
        printed = token.stdout.strip()
        assert token.stdout == printed + "\n" and printed.startswith("sbt_")
        async with db.read() as s:
            found = await token_use(s, printed)
            user = found.user if found else None
            assert user is not None and user.email == "peter@example.com"
            member = await s.scalar(select(Membership).where(Membership.user_id == user.id))
            assert member is not None and member.role == "owner"
            stored = [u.email for u in await s.scalars(select(User))]
        assert printed not in str(stored)
        promoted = sprintboard(
            database_url, "member", "add", "initech", "peter@example.com", "--role", "member"
        )
        assert promoted.returncode == 0 and "is now member" in promoted.stderr
    finally:
        await db.close()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("org", "create", "Bad Slug!", "X", "--owner", "a@example.com"), "not a valid slug"),
        (("org", "create", "ok", "X", "--owner", "not-an-email"), "not an email"),
        (("member", "add", "nowhere", "a@example.com"), "no organization"),
        (("token", "create", "ghost@example.com"), "no user"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(database_url: str, args: tuple[str, ...], words: str):
    assert words in one_line_error(sprintboard(database_url, *args))


def test_duplicate_organization_is_refused(database_url: str):
    args = ("org", "create", "dupe", "Dupe", "--owner", "a@example.com")
    assert sprintboard(database_url, *args).returncode == 0
    assert "already exists" in one_line_error(sprintboard(database_url, *args))


def test_an_unmigrated_database_says_what_to_do(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    assert "sprintboard db upgrade" in one_line_error(sprintboard(url, "demo"))


def test_production_refuses_to_serve_without_secrets(database_url: str):
    result = sprintboard(
        database_url,
        "serve",
        SPRINTBOARD_ENV="production",
        SECRET_KEY="",
        OIDC_ISSUER="",
        OIDC_CLIENT_ID="",
    )
    line = one_line_error(result)
    assert "SECRET_KEY" in line and "OIDC_ISSUER" in line


def test_several_workers_need_redis(database_url: str):
    result = sprintboard(
        database_url,
        "serve",
        *("--workers", "2"),
        SPRINTBOARD_ENV="development",
        SECRET_KEY="s",
        REDIS_URL="",
    )
    assert "REDIS_URL" in one_line_error(result)


def test_python_dash_m_app_is_the_same_command():
    result = subprocess.run(
        [sys.executable, "-m", "app", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    for command in ("serve", "db", "demo", "org", "member", "token"):
        assert command in result.stdout
