"""Migrations are code: they run up and down on SQLite and PostgreSQL, and match the models."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

import app.models  # noqa: F401
from app.db import Base
from app.migrate import downgrade, upgrade
from tests.pg import fresh_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrate.db'}"
    else:
        with fresh_postgres_database() as url:
            yield url


async def _tables_and_drift(url: str) -> tuple[set[str], list[object]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:

            def look(sync_connection):  # type: ignore[no-untyped-def]
                tables = set(inspect(sync_connection).get_table_names())
                context = MigrationContext.configure(sync_connection, opts={"compare_type": True})
                return tables, compare_metadata(context, Base.metadata)

            return await connection.run_sync(look)
    finally:
        await engine.dispose()


def test_migrations_go_up_and_down_and_match_the_models(empty_database: str):
    upgrade(empty_database)
    tables, drift = asyncio.run(_tables_and_drift(empty_database))
    assert {
        "organization",
        "user",
        "membership",
        "invitation",
        "sprint",
        "story",
        "acceptance_criterion",
        "task",
        "task_event",
        "api_token",
    } <= tables
    assert drift == [], f"the models and the migrations disagree: {drift}"
    downgrade(empty_database, "base")
    tables, _ = asyncio.run(_tables_and_drift(empty_database))
    assert tables <= {"alembic_version"}
    upgrade(empty_database)


# Rows as release 0006 wrote them: a sprint, a story in it and one in the backlog.
SEED_0006 = [
    "INSERT INTO organization (id, slug, name, last_event_id, time_zone, created_at)"
    " VALUES (1, 'o', 'O', 0, 'UTC', CURRENT_TIMESTAMP)",
    "INSERT INTO sprint (id, org_id, name, goal, start_date, end_date, status, created_at)"
    " VALUES (1, 1, 'S', '', '2026-01-01', '2026-01-14', 'active', CURRENT_TIMESTAMP)",
    *(
        "INSERT INTO story (id, org_id, sprint_id, title, description, points, position,"
        f" version, created_at, updated_at) VALUES ({story}, 1, {sprint}, 'T', '', 1, 1, 1,"
        " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
        for story, sprint in ((1, "1"), (2, "NULL"))
    ),
    *(
        "INSERT INTO task (id, org_id, story_id, title, description, ac_refs, status, version,"
        f" created_at, updated_at) VALUES ({task}, 1, {story}, 'T', '', '[]', 'available', 1,"
        " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
        for task, story in ((1, 1), (2, 1), (3, 2))
    ),
]


def test_0007_puts_every_task_in_its_storys_sprint(empty_database: str):
    """Before 0007 a task was in its story's sprint; after it, each task says so itself."""
    from sqlalchemy import text

    async def run(statements: list[str]) -> list[tuple[int, object]]:
        engine = create_async_engine(empty_database)
        try:
            async with engine.begin() as connection:
                found: list[tuple[int, object]] = []
                for statement in statements:
                    result = await connection.execute(text(statement))
                    if result.returns_rows:
                        found = [(row[0], row[1]) for row in result]
                return found
        finally:
            await engine.dispose()

    upgrade(empty_database, "0006")
    asyncio.run(run(SEED_0006))
    upgrade(empty_database)
    placed = asyncio.run(run(["SELECT id, sprint_id FROM task ORDER BY id"]))
    assert placed == [(1, 1), (2, 1), (3, None)]
