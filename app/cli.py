"""The `sprintboard` command: serve, migrate, demo data, organizations, members, tokens.

Errors are one line on stderr with exit status 1, never a traceback.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from app.config import ConfigError, Settings
from app.db import Database
from app.errors import Refusal

BIG_MAX = 20_000  # `demo --big`: the most tasks a generated sprint may hold

T = TypeVar("T")


def settings() -> Settings:
    """The environment's settings; one that cannot be read is the command's one-line error."""
    try:
        return Settings.from_env()
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


def run_db(work: Callable[[Database], Awaitable[T]]) -> T:
    """Run `work` against the configured database; turn known failures into one line."""

    async def main() -> T:
        db = Database(settings().database_url)
        try:
            return await work(db)
        finally:
            await db.close()

    try:
        return asyncio.run(main())
    except Refusal as refusal:
        raise click.ClickException(refusal.message) from None
    except (OperationalError, ProgrammingError) as error:
        if "no such table" in str(error) or "does not exist" in str(error):
            raise click.ClickException(
                "the database has no tables yet; run `sprintboard db upgrade` first"
            ) from None
        raise click.ClickException(f"database error: {error.orig}") from None
    except (DBAPIError, OSError) as error:
        raise click.ClickException(f"cannot reach the database: {error}") from None


@click.group()
def cli() -> None:
    """Sprintboard: a live sprint task board."""


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None, help="default: $PORT or 8000")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True)
def serve(host: str, port: int | None, workers: int) -> None:
    """Run Hypercorn (uvloop worker) on app:create_app()."""
    try:
        current = settings().checked()
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    if workers > 1 and not current.redis_url:
        raise click.ClickException(
            "more than one worker needs REDIS_URL: in-process fan-out cannot cross processes"
        )
    bind_port = port or current.port
    click.echo(f"Sprintboard on http://{host}:{bind_port} ({current.env})", err=True)
    if workers == 1:
        from app import create_app
        from app.server import hypercorn_config, serve_in_process

        serve_in_process(create_app(), hypercorn_config(host, bind_port, 1, current))
        return
    from app.server import hypercorn_config, serve_workers

    sys.exit(serve_workers(hypercorn_config(host, bind_port, workers, current), workers))


@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database in DATABASE_URL to the newest revision."""
    from app.migrate import upgrade

    url = settings().database_url
    try:
        upgrade(url)
    except (OperationalError, DBAPIError, OSError) as error:
        raise click.ClickException(f"cannot migrate {url}: {error}") from None
    click.echo("database is at the newest migration", err=True)


@cli.command()
@click.option("--if-empty", is_flag=True, help="only when the database has no organization")
@click.option(
    "--big",
    type=click.IntRange(1, BIG_MAX),
    metavar="N",
    help="also the organization bigco, its active sprint holding N tasks",
)
def demo(if_empty: bool, big: int | None) -> None:
    """Load the demo organizations, people, sprints and tasks (idempotent)."""
    from app.demo import load_demo

    created = run_db(lambda db: load_demo(db, only_if_empty=if_empty, big=big, progress=_progress))
    click.echo("demo data loaded" if created else "demo data already present", err=True)


def _progress(message: str) -> None:
    click.echo(message, err=True)


@cli.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="replace PATH if it exists")
def backup(path: Path, force: bool) -> None:
    """Copy the SQLite database to PATH while the server runs (checked before it says so).

    On PostgreSQL, use pg_dump (this says how and exits 1)."""
    from app.backup import back_up, describe, sqlite_path

    try:
        made = back_up(sqlite_path(settings().database_url), path, replace=force, say=_progress)
    except Refusal as refusal:
        raise click.ClickException(refusal.message) from None
    click.echo(f"backed up to {describe(made)}")


@cli.group()
def org() -> None:
    """Organizations."""


@org.command("create")
@click.argument("slug")
@click.argument("name")
@click.option("--owner", "owner_email", required=True, help="email of the first owner")
def org_create(slug: str, name: str, owner_email: str) -> None:
    """Create an organization with its first owner (invited until they sign in)."""
    from app.auth.accounts import create_org

    async def work(database: Database) -> Any:
        return await database.write(
            lambda s: create_org(s, slug=slug, name=name, owner_email=owner_email)
        )

    created = run_db(work)
    click.echo(f"organization {created.slug} created; {owner_email} is its owner", err=True)


@cli.group()
def member() -> None:
    """Members."""


@member.command("add")
@click.argument("slug")
@click.argument("email")
@click.option(
    "--role", type=click.Choice(["owner", "member", "viewer"]), default="member", show_default=True
)
def member_add(slug: str, email: str, role: str) -> None:
    """Invite EMAIL to the organization, or set their role if they are in it."""
    from app.auth.accounts import add_member, find_org
    from app.models import Invitation, Role

    async def work(database: Database) -> Any:
        async def add(s: Any) -> Any:
            organization = await find_org(s, slug)
            return await add_member(s, org=organization, email=email, role=Role(role))

        return await database.write(add)

    result = run_db(work)
    verb = "invited as" if isinstance(result, Invitation) else "is now"
    click.echo(f"{email} {verb} {role} of {slug}", err=True)


@cli.group()
def token() -> None:
    """Personal API tokens."""


@token.command("create")
@click.argument("email")
@click.option("--name", default="cli", show_default=True, help="a label to recognise it by")
def token_create(email: str, name: str) -> None:
    """Print a new API token for EMAIL, once, alone on stdout (only its hash is kept)."""
    from app.auth.accounts import create_token, find_user_by_email

    async def work(database: Database) -> str:
        async def create(s: Any) -> str:
            user = await find_user_by_email(s, email)
            if user is None:
                raise Refusal(f"no user with the email {email} has signed in yet")
            return await create_token(s, user=user, name=name)

        return await database.write(create)

    click.echo(run_db(work))


def main() -> None:
    """Entry point of the console script."""
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    cli(prog_name="sprintboard")
