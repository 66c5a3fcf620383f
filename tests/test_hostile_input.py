"""Hostile input through the real app in-process: never a 5xx, never a change on refusal.

Each route that reads a number, a path or a body from outside is sent what the hostile
probe sent (5,000-digit numbers, fullwidth and Arabic-Indic digits, 100,000 nested
brackets, redirects to other sites), and then whatever Hypothesis makes up.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from quart import Quart

from app.db import Database
from tests.factories import Scene, snapshot, token_for

HUGE = "9" * 5000
FULLWIDTH_ONE = "%EF%BC%91"  # "１", URL-encoded
JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def bearer(db: Database, scene: Scene) -> dict[str, str]:
    return {"Authorization": f"Bearer {await token_for(db, scene.bob)}"}


def assert_refused(response: Any, *statuses: int) -> None:
    assert response.status_code in statuses, (response.status_code, response)
    assert response.status_code < 500


# --- numbers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/tasks/{HUGE}",
        f"/api/v1/tasks/{FULLWIDTH_ONE}",
        "/api/v1/tasks/%D9%A3",  # "٣"
        "/api/v1/tasks/2147483648",
        f"/api/v1/sprints/{HUGE}/tasks",
        f"/api/v1/users/{FULLWIDTH_ONE}",
        f"/api/v1/stories/{HUGE}/tasks",
        f"/api/v1/tasks/{HUGE}/history",
    ],
)
async def test_ids_in_api_paths_are_ascii_digits_or_404(
    client: Any, bearer: dict[str, str], path: str
) -> None:
    response = await client.get(path, headers=bearer)
    assert response.status_code == 404
    assert (await response.get_json())["error"]["code"] == "not_found"


async def test_a_fullwidth_id_does_not_name_task_one(
    client: Any, bearer: dict[str, str], scene: Scene
) -> None:
    task = scene.acme.tasks[0]
    assert (await client.get(f"/api/v1/tasks/{task.id}", headers=bearer)).status_code == 200
    fullwidth = quote("".join(chr(0xFF10 + int(d)) for d in str(task.id)))
    assert (await client.get(f"/api/v1/tasks/{fullwidth}", headers=bearer)).status_code == 404


@pytest.mark.parametrize("ref", [HUGE, "１", "٣", "2147483648", "-1"])
async def test_an_organization_header_of_any_shape_is_404_not_500(
    client: Any, bearer: dict[str, str], scene: Scene, ref: str
) -> None:
    task = scene.acme.tasks[0]
    response = await client.get(
        f"/api/v1/tasks/{task.id}", headers={**bearer, "X-Organization-Id": ref}
    )
    assert response.status_code == 404


async def test_an_organization_slug_of_5000_digits_is_404(sign_in_as: Any, scene: Scene) -> None:
    alice = await sign_in_as(scene.alice)
    response = await alice.get(f"/o/{HUGE}/sprints")
    assert response.status_code == 404
    response = await alice.get(f"/o/{HUGE}/events", headers={"Accept": "text/event-stream"})
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        (f"?after={HUGE}", {}),
        ("?after=%EF%BC%91", {}),
        ("?after=%D9%A3", {}),
        ("", {"Last-Event-ID": HUGE}),
        ("", {"Last-Event-ID": "١٢"}),
        (f"?sprint={HUGE}", {}),
        ("?sprint=%EF%BC%91", {}),
        ("?sprint=2147483648", {}),
    ],
)
async def test_stream_cursors_and_sprints_of_any_shape_are_400(
    client: Any, bearer: dict[str, str], query: str, headers: dict[str, str]
) -> None:
    response = await client.get(f"/o/acme/events{query}", headers={**bearer, **headers})
    assert response.status_code == 400
    assert (await response.get_json())["error"]["code"] == "bad_cursor"


@pytest.mark.parametrize("value", ["٣", "３", HUGE, "1e1", "0x3", "3.0"])
async def test_form_numbers_in_another_script_or_too_long_are_422(
    sign_in_as: Any, db: Database, scene: Scene, value: str
) -> None:
    bob = await sign_in_as(scene.bob)
    task = scene.acme.tasks[0]
    before = await snapshot(db)
    response = await bob.post(
        f"/o/acme/tasks/{task.id}/edit",
        form={"title": "Renamed", "estimate_hours": value, "csrf_token": "test-csrf-token"},
    )
    assert response.status_code == 422
    assert "whole number" in await response.get_data(as_text=True)
    assert await snapshot(db) == before


# --- bodies -------------------------------------------------------------------------------


async def test_deeply_nested_json_is_400_and_changes_nothing(
    client: Any, bearer: dict[str, str], db: Database, scene: Scene
) -> None:
    story = scene.acme.stories[0]
    before = await snapshot(db)
    response = await client.post(
        f"/api/v1/stories/{story.id}/tasks", data="[" * 100_000, headers={**bearer, **JSON}
    )
    assert response.status_code == 400
    assert (await response.get_json())["error"]["code"] == "bad_request"
    assert await snapshot(db) == before


@pytest.mark.parametrize(
    "body",
    [
        b"{" * 50_000,
        b'{"title": ' + b"[" * 50_000,
        b'{"title": "x", "estimated_hours": ' + b"9" * 5000 + b"}",
        b'{"title": "\xff\xfe"}',
        b"\xff" * 100,
        b"",
        b"null",
        b'"just a string"',
        b"[1, 2, 3]",
        b'{"title": "x", "acceptance_criteria_refs": "AC1"}',
        b'{"title": "x", "estimated_hours": "\xd9\xa3"}',
    ],
)
async def test_malformed_json_bodies_are_4xx_and_change_nothing(
    client: Any, bearer: dict[str, str], db: Database, scene: Scene, body: bytes
) -> None:
    story = scene.acme.stories[0]
    before = await snapshot(db)
    response = await client.post(
        f"/api/v1/stories/{story.id}/tasks", data=body, headers={**bearer, **JSON}
    )
    assert_refused(response, 400, 422)
    assert await snapshot(db) == before


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "title",
                    "description",
                    "acceptance_criteria_refs",
                    "estimated_hours",
                    "status",
                    "x",
                ]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=12,
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=JSON_VALUES)
async def test_whatever_json_arrives_the_answer_is_never_a_5xx(
    client: Any, bearer: dict[str, str], db: Database, scene: Scene, body: Any
) -> None:
    story, task = scene.acme.stories[0], scene.acme.tasks[-1]
    for method, path in (
        ("POST", f"/api/v1/stories/{story.id}/tasks"),
        ("PATCH", f"/api/v1/tasks/{task.id}/status"),
    ):
        before = await snapshot(db)
        response = await client.open(
            path, method=method, data=json.dumps(body), headers={**bearer, **JSON}
        )
        assert response.status_code < 500, await response.get_data(as_text=True)
        if response.status_code >= 400:
            assert await snapshot(db) == before


async def test_a_body_over_a_megabyte_is_413_and_closes_the_connection(
    client: Any, bearer: dict[str, str], scene: Scene
) -> None:
    story = scene.acme.stories[0]
    response = await client.post(
        f"/api/v1/stories/{story.id}/tasks",
        data=b'{"title": "' + b"x" * (1024 * 1024 + 10) + b'"}',
        headers={**bearer, **JSON},
    )
    assert response.status_code == 413
    assert response.headers["Connection"] == "close"


# --- where sign-in leads ------------------------------------------------------------------


@pytest.mark.parametrize(
    "hostile",
    [
        "/\\evil.example/phish",
        "/\t/evil.example",
        "//evil.example",
        "/%5Cevil.example",
        "https://evil.example/",
        "/\r\n/evil.example",
        "javascript:alert(1)",
    ],
)
async def test_development_sign_in_never_leads_to_another_site(
    app: Quart, scene: Scene, hostile: str
) -> None:
    client = app.test_client()
    page = await client.get("/login", query_string={"next": hostile})
    html = await page.get_data(as_text=True)
    assert 'name="next" value="/"' in html  # the form already carries the fallback
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert token is not None
    response = await client.post(
        "/login/dev",
        form={"email": "bob@example.com", "next": hostile, "csrf_token": token.group(1)},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/"


async def test_development_sign_in_follows_a_legitimate_next(app: Quart, scene: Scene) -> None:
    client = app.test_client()
    wanted = f"/o/acme/sprints/{scene.acme.sprint.id}?group=status&status=owned"
    page = await client.get("/login", query_string={"next": wanted})
    token = re.search(r'name="csrf_token" value="([^"]+)"', await page.get_data(as_text=True))
    assert token is not None
    response = await client.post(
        "/login/dev",
        form={"email": "bob@example.com", "next": wanted, "csrf_token": token.group(1)},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == wanted
