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
