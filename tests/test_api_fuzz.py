"""Property-based fuzz of the JSON API from its own OpenAPI document (schemathesis).

A real Hypercorn process serves a migrated copy of the database holding the demo data;
schemathesis reads `/openapi.json` from it and throws generated requests (valid and
invalid) at every documented operation, authenticated as alice (owner of acme).

Checks, chosen deliberately:
- `not_a_server_error`: the point of this file: whatever arrives, never a 5xx.
- `response_schema_conformance`: a body whose status the document declares must match
  the declared schema (a 200 board really has the board's shape, a documented 404 is
  `{"error": {...}}`); statuses the document does not declare are not judged by it.
- `content_type_conformance`: documented answers are JSON.
Left out on purpose:
- `status_code_conformance`: the document lists one refusal per route, while the
  contract allows 401/403/404/409/422 on most of them; listing every one is not the
  point here and test_api.py pins each refusal exactly.
- `positive_data_acceptance`: schema-valid requests name ids that do not exist or
  tasks in the wrong state, and 404/409 are then the correct answers.
- `negative_data_rejection`: the API ignores unknown headers and query parameters
  and accepts ids it then answers 404 for; "must be a 4xx" adds nothing beyond
  "not a 5xx" for us and would flag correct 404s as acceptance of bad input.
- `use_after_free` / `ensure_resource_availability` / `ignored_auth`: stateful and
  auth checks are covered explicitly (and exactly) in test_api.py.
Beyond schemathesis' checks, every refused request (4xx) must leave the database as it
was, and the server's log must hold no traceback. The stateful run follows the links
the OpenAPI document declares (app/api/openapi.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance
from sqlalchemy import or_, select

from app.auth.accounts import create_token, find_user_by_email
from app.db import Database
from app.demo import load_demo
from app.models import Membership, Sprint, Story, Task
from tests.server import Server, running_server

pytestmark = pytest.mark.server

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
MAX_EXAMPLES = 50  # per operation and mode; the whole file runs in well under a minute
STATEFUL_EXAMPLES = 80  # sequences of up to ten linked calls


async def prepare(database_url: str) -> tuple[str, dict[str, list[int]]]:
    """Load the demo data; return a token for alice and real ids to steer the fuzzer."""
    db = Database(database_url)
    try:
        await load_demo(db, progress=lambda _m: None)

        async def work(session: Any) -> tuple[str, dict[str, list[int]]]:
            alice = await find_user_by_email(session, "alice@example.com")
            assert alice is not None
            token = await create_token(session, user=alice, name="fuzz")
            # Work that can still change: the demo's completed sprints are a record, and
            # steering the fuzzer at them would only collect refusals.
            closed = select(Sprint.id).where(Sprint.status == "completed")
            ids = {
                "task_id": list(
                    await session.scalars(
                        select(Task.id)
                        .where(or_(Task.sprint_id.is_(None), Task.sprint_id.not_in(closed)))
                        .order_by(Task.id)
                    )
                ),
                "story_id": list(
                    await session.scalars(
                        select(Story.id)
                        .where(or_(Story.sprint_id.is_(None), Story.sprint_id.not_in(closed)))
                        .order_by(Story.id)
                    )
                ),
                "sprint_id": list(await session.scalars(select(Sprint.id).order_by(Sprint.id))),
                "user_id": sorted(set(await session.scalars(select(Membership.user_id)))),
            }
            return token, ids

        return await db.write(work)
    finally:
        await db.close()


# What the API writes: stateful scenarios start from the same rows, so that a sequence
# does the same thing whenever Hypothesis runs it (it refuses, as flaky, a sequence
# whose answers changed because an earlier one took a task).
SAVED = ("task_event", "task", "organization")


@dataclass
class FuzzTarget:
    """A real server on its own demo database, a bearer token for alice, real ids."""

    server: Server
    path: Path
    token: str
    ids: dict[str, list[int]]
    initial: dict[str, list[tuple[object, ...]]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    def state(self) -> tuple[object, ...]:
        """What a refused request must leave as it was: tasks, stories, the event log."""
        with contextlib.closing(sqlite3.connect(self.path)) as db:
            return (
                db.execute("SELECT id, status, owner_id, version, title FROM task").fetchall(),
                db.execute("SELECT id, title, points FROM story").fetchall(),
                db.execute("SELECT id, last_event_id FROM organization").fetchall(),
                db.execute("SELECT count(*) FROM task_event").fetchall(),
            )

    def save(self) -> dict[str, list[tuple[object, ...]]]:
        """The rows the API changes, to put back between stateful scenarios."""
        with contextlib.closing(sqlite3.connect(self.path)) as db:
            return {table: db.execute(f"SELECT * FROM {table}").fetchall() for table in SAVED}

    def restore(self, saved: dict[str, list[tuple[object, ...]]]) -> None:
        with contextlib.closing(sqlite3.connect(self.path, timeout=30)) as db, db:
            db.execute("PRAGMA foreign_keys=OFF")
            for table in SAVED:
                db.execute(f"DELETE FROM {table}")
                if saved[table]:
                    marks = ", ".join("?" * len(saved[table][0]))
                    db.executemany(f"INSERT INTO {table} VALUES ({marks})", saved[table])

    def assert_no_traceback(self) -> None:
        log = "".join(self.server.log)
        assert "Traceback" not in log and "Error in ASGI" not in log, log[-3000:]


@pytest.fixture(scope="module")
def fuzz_target(
    migrated_sqlite: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzTarget]:
    target = tmp_path_factory.mktemp("fuzz") / "sprintboard.db"
    shutil.copy(migrated_sqlite, target)
    database_url = f"sqlite+aiosqlite:///{target}"
    token, ids = asyncio.run(prepare(database_url))
    with running_server(database_url) as server:
        fuzzed = FuzzTarget(server, target, token, ids)
        fuzzed.initial = fuzzed.save()  # the demo as loaded, before any test changed it
        yield fuzzed


@pytest.fixture(scope="module")
def api_schema(fuzz_target: FuzzTarget) -> Any:
    url = fuzz_target.url
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", timeout=10)
    schema.config.update(base_url=url)
    schema.config.generation.update(deterministic=True)
    return schema


# Every operation the document offers. Listed here, not read from the live document at
# collection time, because the server only exists once fixtures run; and
# `schemathesis.pytest.from_fixture` (the lazy loader) does not work with pytest 9.2
# (it writes `Function._nodeid`, which pytest 9.2 no longer has).
# test_every_documented_operation_is_fuzzed keeps this list complete.
OPERATIONS = [
    ("GET", "/api/v1/users/me"),
    ("GET", "/api/v1/sprints"),
    ("GET", "/api/v1/users/{user_id}"),
    ("GET", "/api/v1/sprints/{sprint_id}/tasks"),
    ("GET", "/api/v1/sprints/{sprint_id}/burndown"),
    ("GET", "/api/v1/sprints/{sprint_id}/presence"),
    ("GET", "/api/v1/stories/{story_id}/tasks"),
    ("POST", "/api/v1/stories/{story_id}/tasks"),
    ("GET", "/api/v1/tasks/{task_id}"),
    ("PUT", "/api/v1/tasks/{task_id}/ownership"),
    ("DELETE", "/api/v1/tasks/{task_id}/ownership"),
    ("PATCH", "/api/v1/tasks/{task_id}/status"),
    ("POST", "/api/v1/tasks/{task_id}/work/start"),
    ("POST", "/api/v1/tasks/{task_id}/work/complete"),
    ("GET", "/api/v1/tasks/{task_id}/history"),
    ("PATCH", "/api/v1/tasks/{task_id}"),
    ("GET", "/api/v1/stories/{story_id}"),
    ("PATCH", "/api/v1/stories/{story_id}"),
    ("POST", "/api/v1/stories"),
    ("GET", "/api/v1/backlog"),
    ("PUT", "/api/v1/stories/{story_id}/sprint"),
    ("POST", "/api/v1/sprints/{sprint_id}/complete"),
    ("GET", "/api/v1/sprints/{sprint_id}/report"),
    ("GET", "/api/v1/velocity"),
    ("DELETE", "/api/v1/tasks/{task_id}"),
    ("POST", "/api/v1/tasks/{task_id}/restore"),
    ("PUT", "/api/v1/tasks/{task_id}/story"),
    ("GET", "/api/v1/users/me/tasks"),
]


def test_every_documented_operation_is_fuzzed(api_schema: Any) -> None:
    documented = {
        (op.method.upper(), op.path)
        for result in api_schema.get_all_operations()
        for op in [result.ok()]
    }
    assert documented == set(OPERATIONS)


def cases(operation: Any, mode: Any, ids: dict[str, list[int]]) -> st.SearchStrategy[Any]:
    """Generated cases; half of them aim at a row that exists (random ids nearly never do)."""
    anything = operation.as_strategy(generation_mode=mode)
    names = [p.name for p in operation.path_parameters]
    if mode is not schemathesis.GenerationMode.POSITIVE or not names or not ids.get(names[0]):
        return anything
    name = names[0]
    real = st.sampled_from(ids[name]).flatmap(
        lambda value: operation.as_strategy(generation_mode=mode, path_parameters={name: value})
    )
    return st.one_of(anything, real)


@pytest.mark.parametrize("mode", ["positive", "negative"])
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_server_errors(
    api_schema: Any, fuzz_target: FuzzTarget, method: str, path: str, mode: str
) -> None:
    url, ids = fuzz_target.url, fuzz_target.ids
    operation = api_schema[path][method]
    auth = {"Authorization": f"Bearer {fuzz_target.token}"}

    @given(case=cases(operation, schemathesis.GenerationMode(mode), ids))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: Any) -> None:
        before = fuzz_target.state()
        response = case.call(base_url=url, headers=auth, timeout=10)
        case.validate_response(response, checks=CHECKS)
        if response.status_code >= 400:
            assert fuzz_target.state() == before, f"a refused {case.method} changed something"

    fuzz()
    fuzz_target.assert_no_traceback()


def test_stateful_sequences_along_the_documented_links(fuzz_target: FuzzTarget) -> None:
    """Create a task, then take, start, complete or release it, read it and its history…
    following the links the OpenAPI document declares, with real ids from real answers."""
    auth = {"Authorization": f"Bearer {fuzz_target.token}"}
    steps: list[tuple[str, int]] = []
    schema = schemathesis.openapi.from_url(f"{fuzz_target.url}/openapi.json", timeout=10)
    schema.config.update(base_url=fuzz_target.url)
    # Valid requests, so that sequences get past the first call; the stateless tests
    # above send the invalid ones.
    schema.config.generation.update(modes=[schemathesis.GenerationMode.POSITIVE])
    # Sequences are about a task's life; the sprint cycle's operations (the backlog,
    # new and moved stories, completing, reports, velocity) are fuzzed call by call above
    # (here they would crowd the tasks out of a fixed budget of steps).
    # So are keeping the board tidy's (archive, restore, another story, My work): an
    # archive here would leave the tasks the sequences walk refusing every step.
    schema = schema.exclude(
        path_regex=r"(/complete|/backlog|/stories|/sprint|/report|/velocity|/restore|/story"
        r"|/users/me/tasks)$"
    )
    schema = schema.exclude(method="DELETE", path="/api/v1/tasks/{task_id}")

    known = {name: set(values) for name, values in fuzz_target.ids.items()}
    steer = random.Random(7)

    initial = fuzz_target.initial

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            fuzz_target.restore(initial)
            steer.seed(7)
            known["task_id"] = set(fuzz_target.ids["task_id"])

        def before_call(self, case: Any) -> None:
            case.headers = {**(case.headers or {}), **auth}
            # A made-up id nearly never names a row: half of them are swapped for a real
            # one, so that sequences can start (ids that came through a link are real).
            for name, value in (case.path_parameters or {}).items():
                if name in known and value not in known[name] and steer.random() < 0.5:
                    case.path_parameters[name] = steer.choice(sorted(known[name]))

        def after_call(self, response: Any, case: Any) -> None:
            if response.status_code == 201 and "task_id" in response.json():
                known["task_id"].add(int(response.json()["task_id"]))

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"timeout": 10}

        def call(self, case: Any, **kwargs: Any) -> Any:
            before = fuzz_target.state()
            response = case.call(**kwargs)
            if response.status_code >= 400:
                assert fuzz_target.state() == before, f"a refused {case.method} changed something"
            steps.append((f"{case.method} {case.path}", response.status_code))
            return response

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS)

    Workflow.run(
        settings=settings(
            max_examples=STATEFUL_EXAMPLES,
            stateful_step_count=10,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    assert len(steps) > STATEFUL_EXAMPLES  # sequences ran, not single calls
    succeeded = {operation for operation, status in steps if 200 <= status < 300}
    # Linked calls reached real tasks: created ones, taken ones, started ones.
    assert {
        "POST /api/v1/stories/{story_id}/tasks",
        "PUT /api/v1/tasks/{task_id}/ownership",
    } <= succeeded
    fuzz_target.assert_no_traceback()
