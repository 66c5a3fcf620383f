"""Throwaway PostgreSQL databases for tests (server at 127.0.0.1:5432, trust auth)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Iterator

import asyncpg

ADMIN_DSN = os.environ.get("SPRINTBOARD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(ADMIN_DSN)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextlib.contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """Create an empty database, yield its SQLAlchemy URL, drop it afterwards."""
    name = f"sprintboard_test_{uuid.uuid4().hex[:12]}"
    try:
        yield create_database(name)
    finally:
        drop_database(name)


def url_for(name: str) -> str:
    base = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}"


def create_database(name: str, *, template: str | None = None) -> str:
    """CREATE DATABASE (a copy of `template`, if given); returns its SQLAlchemy URL."""
    suffix = f' TEMPLATE "{template}"' if template else ""
    asyncio.run(_admin(f'CREATE DATABASE "{name}"{suffix}'))
    return url_for(name)


def drop_database(name: str) -> None:
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
