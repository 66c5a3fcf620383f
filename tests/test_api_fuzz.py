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
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance
from sqlalchemy import select

from app.auth.accounts import create_token, find_user_by_email
from app.db import Database
from app.demo import load_demo
from app.models import Membership, Sprint, Story, Task
from tests.server import running_server

pytestmark = pytest.mark.server

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
MAX_EXAMPLES = 50  # per operation and mode; the whole file runs in well under a minute


async def prepare(database_url: str) -> tuple[str, dict[str, list[int]]]:
    """Load the demo data; return a token for alice and real ids to steer the fuzzer."""
    db = Database(database_url)
    try:
        await load_demo(db, progress=lambda _m: None)

        async def work(session: Any) -> tuple[str, dict[str, list[int]]]:
            alice = await find_user_by_email(session, "alice@example.com")
            assert alice is not None
            token = await create_token(session, user=alice, name="fuzz")
            ids = {
                "task_id": list(await session.scalars(select(Task.id).order_by(Task.id))),
                "story_id": list(await session.scalars(select(Story.id).order_by(Story.id))),
                "sprint_id": list(await session.scalars(select(Sprint.id).order_by(Sprint.id))),
                "user_id": sorted(set(await session.scalars(select(Membership.user_id)))),
            }
            return token, ids

        return await db.write(work)
    finally:
        await db.close()


@pytest.fixture(scope="module")
def fuzz_target(
    migrated_sqlite: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str, dict[str, list[int]]]]:
    """(base url, bearer token, demo ids) of a real server on its own demo database."""
    target = tmp_path_factory.mktemp("fuzz") / "sprintboard.db"
    shutil.copy(migrated_sqlite, target)
    database_url = f"sqlite+aiosqlite:///{target}"
    token, ids = asyncio.run(prepare(database_url))
    with running_server(database_url) as server:
        yield server.url, token, ids


@pytest.fixture(scope="module")
def api_schema(fuzz_target: tuple[str, str, dict[str, list[int]]]) -> Any:
    url, _token, _ids = fuzz_target
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
    ("GET", "/api/v1/users/{user_id}"),
    ("GET", "/api/v1/sprints/{sprint_id}/tasks"),
    ("GET", "/api/v1/stories/{story_id}/tasks"),
    ("POST", "/api/v1/stories/{story_id}/tasks"),
    ("GET", "/api/v1/tasks/{task_id}"),
    ("PUT", "/api/v1/tasks/{task_id}/ownership"),
    ("DELETE", "/api/v1/tasks/{task_id}/ownership"),
    ("PATCH", "/api/v1/tasks/{task_id}/status"),
    ("POST", "/api/v1/tasks/{task_id}/work/start"),
    ("POST", "/api/v1/tasks/{task_id}/work/complete"),
    ("GET", "/api/v1/tasks/{task_id}/history"),
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
    api_schema: Any,
    fuzz_target: tuple[str, str, dict[str, list[int]]],
    method: str,
    path: str,
    mode: str,
) -> None:
    url, token, ids = fuzz_target
    operation = api_schema[path][method]
    auth = {"Authorization": f"Bearer {token}"}

    @given(case=cases(operation, schemathesis.GenerationMode(mode), ids))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: Any) -> None:
        case.call_and_validate(base_url=url, headers=auth, checks=CHECKS, timeout=10)

    fuzz()
