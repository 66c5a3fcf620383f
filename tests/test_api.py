"""The JSON API (`/api/v1`), through the real app in-process, route by route.

Every route gets its success case and its refusals; every refusal is checked to answer
`{"error": {"code", "message"}}` with the right status and to change nothing.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from quart import Quart
from sqlalchemy import update

from app.auth.accounts import add_member, hash_token
from app.db import Database
from app.models import ApiToken, Role
from app.timefmt import local_today
from tests.factories import Scene, events_of, fetch_task, snapshot, token_for

ISO_MS_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3,6}Z$")
TASK_KEYS = {
    "archived",
    "id",
    "story_id",
    "title",
    "description",
    "acceptance_criteria_refs",
    "status",
    "owner_user_id",
    "estimated_hours",
    "created_at",
    "updated_at",
    "owned_at",
    "completed_at",
}
BOARD_SPRINT_KEYS = {
    "id",
    "name",
    "goal",
    "startDate",
    "endDate",
    "daysRemaining",
    "status",
    "totalStories",
    "totalTasks",
    "completedTasks",
    "progressPercentage",
}
BOARD_TASK_KEYS = {
    "id",
    "storyId",
    "storyTitle",
    "title",
    "description",
    "status",
    "ownerUserId",
    "ownerName",
    "acceptanceCriteriaRefs",
    "estimatedHours",
    "createdAt",
    "updatedAt",
}
EVENT_KEYS = {
    "id",
    "organization_id",
    "type",
    "task_id",
    "story_id",
    "sprint_id",
    "owner_user_id",
    "previous_owner_user_id",
    "old_status",
    "new_status",
    "changed_by_user_id",
    "timestamp",
}
JSON = {"Content-Type": "application/json"}


# ---------------------------------------------------------------- helpers / fixtures


@pytest.fixture
async def tokens(db: Database, scene: Scene) -> dict[str, str]:
    """A personal API token for each person of the scene."""
    return {name: await token_for(db, user) for name, user in scene.people.items()}


@pytest.fixture
def call(app: Quart, tokens: dict[str, str]):  # type: ignore[no-untyped-def]
    """`await call(method, path, as_="bob", **kwargs)` → (status, json body)."""

    async def make(
        method: str,
        path: str,
        as_: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> tuple[int, Any]:
        sent = dict(headers or {})
        if as_ is not None:
            sent["Authorization"] = f"Bearer {tokens[as_]}"
        response = await app.test_client().open(path, method=method, headers=sent, **kwargs)
        return response.status_code, await response.get_json()

    return make


def assert_error(body: Any, code: str | None = None) -> str:
    """The body is `{"error": {"code", "message"}}`; returns the message."""
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["code"]
    assert isinstance(body["error"]["message"], str) and body["error"]["message"].strip()
    if code is not None:
        assert body["error"]["code"] == code, body
    return str(body["error"]["message"])


def assert_task_json(task: dict[str, Any]) -> None:
    """A task in the replaced API's snake_case shape, ids as strings, timestamps ISO Z."""
    assert set(task) == TASK_KEYS, task
    assert isinstance(task["id"], str) and task["id"].isdigit()
    assert isinstance(task["story_id"], str) and task["story_id"].isdigit()
    assert task["owner_user_id"] is None or isinstance(task["owner_user_id"], str)
    assert isinstance(task["acceptance_criteria_refs"], list)
    for key in ("created_at", "updated_at"):
        assert ISO_MS_Z.match(task[key]), (key, task[key])
    for key in ("owned_at", "completed_at"):
        assert task[key] is None or ISO_MS_Z.match(task[key]), (key, task[key])


def task_path(task_id: int, rest: str = "") -> str:
    return f"/api/v1/tasks/{task_id}{rest}"


# ---------------------------------------------------------------- authentication


async def test_me_with_a_bearer_token(call, scene: Scene):
    status, body = await call("GET", "/api/v1/users/me", as_="alice")
    assert status == 200
    assert body == {
        "id": str(scene.alice.id),
        "email": "alice@example.com",
        "name": scene.alice.name,
        "organizations": [
            {"id": str(scene.acme.org.id), "slug": "acme", "name": "Acme", "role": "owner"}
        ],
    }


async def test_me_shows_the_viewer_role(call, scene: Scene):
    status, body = await call("GET", "/api/v1/users/me", as_="victor")
    assert status == 200 and [o["role"] for o in body["organizations"]] == ["viewer"]


async def test_me_with_the_session_cookie(sign_in_as, scene: Scene):
    client = await sign_in_as(scene.bob)
    response = await client.get("/api/v1/users/me")
    assert response.status_code == 200
    body = await response.get_json()
    assert (body["id"], body["email"]) == (str(scene.bob.id), "bob@example.com")
    assert [(o["slug"], o["role"]) for o in body["organizations"]] == [("acme", "member")]


async def test_me_without_credentials_is_401(app: Quart, scene: Scene):
    response = await app.test_client().get("/api/v1/users/me")
    assert response.status_code == 401
    assert_error(await response.get_json(), "unauthenticated")


@pytest.mark.parametrize("kind", ["unknown", "revoked", "malformed"])
async def test_unknown_or_revoked_token_is_401(app: Quart, db: Database, scene: Scene, kind: str):
    token = await token_for(db, scene.bob)
    if kind == "revoked":
        await db.write(
            lambda s: s.execute(
                update(ApiToken)
                .where(ApiToken.token_hash == hash_token(token))
                .values(revoked_at=dt.datetime.now(dt.UTC))
            )
        )
    elif kind == "unknown":
        token = token + "x"
    else:
        token = "not-a-token"
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    response = await client.get("/api/v1/users/me", headers=headers)
    assert response.status_code == 401
    assert_error(await response.get_json(), "unauthenticated")
    # A mutation with a dead token is refused the same way, and changes nothing.
    before = await snapshot(db)
    response = await client.put(task_path(scene.acme.tasks[0].id, "/ownership"), headers=headers)
    assert response.status_code == 401
    assert_error(await response.get_json())
    assert await snapshot(db) == before


def every_route(scene: Scene) -> list[tuple[str, str, dict[str, Any]]]:
    task, story, sprint = scene.acme.tasks[0], scene.acme.stories[0], scene.acme.sprint
    return [
        ("GET", "/api/v1/users/me", {}),
        ("GET", f"/api/v1/users/{scene.bob.id}", {}),
        ("GET", f"/api/v1/sprints/{sprint.id}/tasks", {}),
        ("GET", f"/api/v1/stories/{story.id}/tasks", {}),
        ("POST", f"/api/v1/stories/{story.id}/tasks", {"json": {"title": "x"}}),
        ("PUT", task_path(task.id, "/ownership"), {}),
        ("DELETE", task_path(task.id, "/ownership"), {}),
        ("PATCH", task_path(task.id, "/status"), {"json": {"status": "owned"}}),
        ("POST", task_path(task.id, "/work/start"), {}),
        ("POST", task_path(task.id, "/work/complete"), {}),
        ("GET", task_path(task.id, "/history"), {}),
    ]


async def test_every_route_answers_401_without_credentials(call, db: Database, scene: Scene):
    before = await snapshot(db)
    for method, path, kwargs in every_route(scene):
        status, body = await call(method, path, headers=JSON, **kwargs)
        assert status == 401, (method, path, status, body)
        assert_error(body, "unauthenticated")
    assert await snapshot(db) == before


# ---------------------------------------------------------------- users


async def test_a_co_member_is_visible(call, scene: Scene):
    status, body = await call("GET", f"/api/v1/users/{scene.carol.id}", as_="bob")
    assert status == 200
    assert body == {
        "id": str(scene.carol.id),
        "email": "carol@example.com",
        "name": scene.carol.name,
    }


async def test_a_user_of_another_organization_is_404(call, scene: Scene):
    status, body = await call("GET", f"/api/v1/users/{scene.dave.id}", as_="alice")
    assert status == 404
    assert_error(body, "not_found")
    status, body = await call("GET", f"/api/v1/users/{scene.alice.id}", as_="dave")
    assert status == 404
    assert_error(body, "not_found")


async def test_an_unknown_user_is_404(call, scene: Scene):
    status, body = await call("GET", "/api/v1/users/999999", as_="alice")
    assert status == 404
    assert_error(body)


# ---------------------------------------------------------------- the board


async def test_board_grouped_by_story(call, scene: Scene):
    sprint = scene.acme.sprint
    status, body = await call("GET", f"/api/v1/sprints/{sprint.id}/tasks?groupBy=story", as_="bob")
    assert status == 200
    assert set(body) == {"sprint", "tasks", "groups"}
    header = body["sprint"]
    assert set(header) == BOARD_SPRINT_KEYS
    assert header["id"] == str(sprint.id)
    assert (header["name"], header["goal"], header["status"]) == (
        sprint.name,
        sprint.goal,
        "active",
    )
    assert header["startDate"] == sprint.start_date.isoformat()
    assert header["endDate"] == sprint.end_date.isoformat()
    assert header["daysRemaining"] == sprint.days_remaining(local_today("UTC"))
    assert (header["totalStories"], header["totalTasks"], header["completedTasks"]) == (2, 6, 0)
    assert header["progressPercentage"] == 0

    assert [t["id"] for t in body["tasks"]] == [str(t.id) for t in scene.acme.tasks]
    for task in body["tasks"]:
        assert set(task) == BOARD_TASK_KEYS, task
        assert task["status"] == "available" and task["ownerUserId"] is None
        assert task["ownerName"] is None and task["acceptanceCriteriaRefs"] == ["AC1"]
        assert task["estimatedHours"] == 2
        assert ISO_MS_Z.match(task["createdAt"]) and ISO_MS_Z.match(task["updatedAt"])
    first = body["tasks"][0]
    assert (first["storyId"], first["storyTitle"]) == (
        str(scene.acme.stories[0].id),
        scene.acme.stories[0].title,
    )

    assert list(body["groups"]) == [str(s.id) for s in scene.acme.stories]
    for story in scene.acme.stories:
        group = body["groups"][str(story.id)]
        ids = [str(t.id) for t in scene.acme.tasks if t.story_id == story.id]
        assert group == {"count": 3, "tasks": ids}


async def test_board_default_grouping_is_by_story(call, scene: Scene):
    status, body = await call("GET", f"/api/v1/sprints/{scene.acme.sprint.id}/tasks", as_="bob")
    assert status == 200
    assert set(body["groups"]) == {str(s.id) for s in scene.acme.stories}


async def test_board_grouped_by_status_with_totals_and_progress(call, scene: Scene):
    t0, t1, t2 = scene.acme.tasks[:3]
    assert (await call("PUT", task_path(t0.id, "/ownership"), as_="bob"))[0] == 200
    assert (await call("PUT", task_path(t1.id, "/ownership"), as_="carol"))[0] == 200
    assert (await call("POST", task_path(t1.id, "/work/start"), as_="carol"))[0] == 200
    assert (await call("PUT", task_path(t2.id, "/ownership"), as_="alice"))[0] == 200
    assert (await call("POST", task_path(t2.id, "/work/complete"), as_="alice"))[0] == 200

    status, body = await call(
        "GET", f"/api/v1/sprints/{scene.acme.sprint.id}/tasks?groupBy=status", as_="victor"
    )
    assert status == 200
    groups = body["groups"]
    assert set(groups) == {"available", "owned", "inprogress", "completed"}
    assert groups["owned"] == {"count": 1, "tasks": [str(t0.id)]}
    assert groups["inprogress"] == {"count": 1, "tasks": [str(t1.id)]}
    assert groups["completed"] == {"count": 1, "tasks": [str(t2.id)]}
    assert groups["available"]["count"] == 3
    assert groups["available"]["tasks"] == [str(t.id) for t in scene.acme.tasks[3:]]
    header = body["sprint"]
    assert (header["totalTasks"], header["completedTasks"]) == (6, 1)
    assert header["progressPercentage"] == round(100 * 1 / 6)
    owned = next(t for t in body["tasks"] if t["id"] == str(t0.id))
    assert (owned["ownerUserId"], owned["ownerName"]) == (str(scene.bob.id), scene.bob.name)


async def test_board_filtered_by_status(call, scene: Scene):
    taken = scene.acme.tasks[0]
    assert (await call("PUT", task_path(taken.id, "/ownership"), as_="bob"))[0] == 200
    status, body = await call(
        "GET", f"/api/v1/sprints/{scene.acme.sprint.id}/tasks?status=available", as_="bob"
    )
    assert status == 200
    shown = [t["id"] for t in body["tasks"]]
    assert shown == [str(t.id) for t in scene.acme.tasks[1:]]
    assert {t["status"] for t in body["tasks"]} == {"available"}
    assert sum(g["count"] for g in body["groups"].values()) == 5
    assert all(g["count"] == len(g["tasks"]) for g in body["groups"].values())
    # The header describes the sprint, not the filtered view.
    assert body["sprint"]["totalTasks"] == 6


async def test_board_of_another_organizations_sprint_is_404(call, db: Database, scene: Scene):
    status, body = await call("GET", f"/api/v1/sprints/{scene.globex.sprint.id}/tasks", as_="alice")
    assert status == 404
    assert_error(body, "not_found")
    status, body = await call("GET", "/api/v1/sprints/999999/tasks", as_="alice")
    assert status == 404
    assert_error(body)


async def test_board_with_a_bad_status_is_422(call, scene: Scene):
    status, body = await call(
        "GET", f"/api/v1/sprints/{scene.acme.sprint.id}/tasks?status=done", as_="bob"
    )
    assert status == 422
    assert "done" in assert_error(body, "invalid")


# ---------------------------------------------------------------- stories' tasks


async def test_story_tasks_lists_them_oldest_first(call, scene: Scene):
    story = scene.acme.stories[1]
    status, body = await call("GET", f"/api/v1/stories/{story.id}/tasks", as_="victor")
    assert status == 200
    assert [t["id"] for t in body] == [
        str(t.id) for t in scene.acme.tasks if t.story_id == story.id
    ]
    for task in body:
        assert_task_json(task)
        assert task["story_id"] == str(story.id)


async def test_create_a_task(call, db: Database, scene: Scene):
    story = scene.acme.stories[0]
    status, body = await call(
        "POST",
        f"/api/v1/stories/{story.id}/tasks",
        as_="bob",
        json={
            "title": "Write the API tests",
            "description": "All of them",
            "acceptance_criteria_refs": ["AC1"],
        },
    )
    assert status == 201
    assert set(body) == {"task_id"} and isinstance(body["task_id"], str)
    task = await fetch_task(db, int(body["task_id"]))
    assert (task.title, task.description, list(task.ac_refs), task.status, task.owner_id) == (
        "Write the API tests",
        "All of them",
        ["AC1"],
        "available",
        None,
    )
    assert task.story_id == story.id
    events = await events_of(db, task.id)
    assert [(e.type, e.actor_id) for e in events] == [("task_created", scene.bob.id)]

    status, listed = await call("GET", f"/api/v1/stories/{story.id}/tasks", as_="bob")
    assert status == 200 and listed[-1]["id"] == body["task_id"]
    assert listed[-1]["acceptance_criteria_refs"] == ["AC1"]


async def test_an_owner_may_create_a_task_without_optional_fields(call, db: Database, scene: Scene):
    story = scene.acme.stories[1]
    status, body = await call(
        "POST", f"/api/v1/stories/{story.id}/tasks", as_="alice", json={"title": "Bare"}
    )
    assert status == 201
    task = await fetch_task(db, int(body["task_id"]))
    assert (task.title, list(task.ac_refs or []), task.description) == ("Bare", [], "")


@pytest.mark.parametrize(
    ("payload", "mentions"),
    [
        ({"title": "Ghost", "acceptance_criteria_refs": ["AC9"]}, "AC9"),
        ({"title": "", "acceptance_criteria_refs": ["AC1"]}, "title"),
        ({"title": "   ", "acceptance_criteria_refs": []}, "title"),
        ({"acceptance_criteria_refs": ["AC1"]}, "title"),
        ({"title": "Too big", "estimated_hours": 99}, "estimated_hours"),
    ],
)
async def test_creating_a_bad_task_is_422_and_changes_nothing(
    call, db: Database, scene: Scene, payload: dict[str, Any], mentions: str
):
    before = await snapshot(db)
    status, body = await call(
        "POST", f"/api/v1/stories/{scene.acme.stories[0].id}/tasks", as_="bob", json=payload
    )
    assert status == 422
    assert mentions.lower() in assert_error(body, "invalid").lower()
    assert await snapshot(db) == before


async def test_a_viewer_cannot_create_a_task(call, db: Database, scene: Scene):
    before = await snapshot(db)
    status, body = await call(
        "POST",
        f"/api/v1/stories/{scene.acme.stories[0].id}/tasks",
        as_="victor",
        json={"title": "Sneaky", "acceptance_criteria_refs": ["AC1"]},
    )
    assert status == 403
    assert_error(body, "forbidden")
    assert await snapshot(db) == before


async def test_another_organizations_story_is_404(call, db: Database, scene: Scene):
    story = scene.globex.stories[0]
    before = await snapshot(db)
    status, body = await call("GET", f"/api/v1/stories/{story.id}/tasks", as_="alice")
    assert status == 404
    assert_error(body, "not_found")
    status, body = await call(
        "POST", f"/api/v1/stories/{story.id}/tasks", as_="alice", json={"title": "Intruder"}
    )
    assert status == 404
    assert_error(body, "not_found")
    assert await snapshot(db) == before


# ---------------------------------------------------------------- ownership


async def test_take_a_task(call, db: Database, scene: Scene):
    task = scene.acme.tasks[0]
    status, body = await call("PUT", task_path(task.id, "/ownership"), as_="bob")
    assert status == 200
    assert set(body) == {"success", "message", "task"}
    assert body["success"] is True and isinstance(body["message"], str) and body["message"]
    assert_task_json(body["task"])
    t = body["task"]
    assert (t["id"], t["status"], t["owner_user_id"]) == (str(task.id), "owned", str(scene.bob.id))
    assert t["owned_at"] is not None and t["completed_at"] is None
    after = await fetch_task(db, task.id)
    assert (after.status, after.owner_id) == ("owned", scene.bob.id)


async def test_put_with_json_content_type_and_an_empty_body_is_accepted(
    call, db: Database, scene: Scene
):
    task = scene.acme.tasks[1]
    status, body = await call(
        "PUT", task_path(task.id, "/ownership"), as_="carol", headers=JSON, data=b""
    )
    assert status == 200, body
    assert body["task"]["owner_user_id"] == str(scene.carol.id)
    status, body = await call(
        "POST", task_path(task.id, "/work/start"), as_="carol", headers=JSON, data=b""
    )
    assert status == 200, body
    assert body["task"]["status"] == "inprogress"
    status, body = await call(
        "DELETE", task_path(task.id, "/ownership"), as_="carol", headers=JSON, data=b""
    )
    assert status == 200, body
    assert (await fetch_task(db, task.id)).status == "available"


@pytest.mark.parametrize("second", ["bob", "carol", "alice"])
async def test_taking_a_held_task_is_409_naming_the_holder(
    call, db: Database, scene: Scene, second: str
):
    task = scene.acme.tasks[0]
    assert (await call("PUT", task_path(task.id, "/ownership"), as_="bob"))[0] == 200
    before = await snapshot(db)
    status, body = await call("PUT", task_path(task.id, "/ownership"), as_=second)
    assert status == 409
    message = assert_error(body, "conflict")
    if second == "bob":
        assert "already hold" in message
    else:
        assert scene.bob.name in message
    assert await snapshot(db) == before


async def test_release_a_task(call, db: Database, scene: Scene):
    task = scene.acme.tasks[0]
    assert (await call("PUT", task_path(task.id, "/ownership"), as_="bob"))[0] == 200
    status, body = await call("DELETE", task_path(task.id, "/ownership"), as_="bob")
    assert status == 200 and body["success"] is True and body["message"]
    assert_task_json(body["task"])
    t = body["task"]
    assert (t["status"], t["owner_user_id"], t["owned_at"], t["estimated_hours"]) == (
        "available",
        None,
        None,
        None,
    )


async def test_release_by_someone_else_is_409(call, db: Database, scene: Scene):
    task = scene.acme.tasks[0]
    assert (await call("PUT", task_path(task.id, "/ownership"), as_="bob"))[0] == 200
    before = await snapshot(db)
    status, body = await call("DELETE", task_path(task.id, "/ownership"), as_="carol")
    assert status == 409
    assert scene.bob.name in assert_error(body, "conflict")
    # An organization owner frees it, but only with a reason (tests/test_tidy.py).
    status, body = await call("DELETE", task_path(task.id, "/ownership"), as_="alice")
    assert status == 422
    assert "why" in assert_error(body, "invalid")
    assert await snapshot(db) == before


async def test_release_of_an_available_task_is_409(call, db: Database, scene: Scene):
    before = await snapshot(db)
    status, body = await call("DELETE", task_path(scene.acme.tasks[0].id, "/ownership"), as_="bob")
    assert status == 409
    assert_error(body, "conflict")
    assert await snapshot(db) == before


async def test_a_viewer_cannot_take_a_task(call, db: Database, scene: Scene):
    before = await snapshot(db)
    status, body = await call("PUT", task_path(scene.acme.tasks[0].id, "/ownership"), as_="victor")
    assert status == 403
    assert_error(body, "forbidden")
    assert await snapshot(db) == before


# ---------------------------------------------------------------- status


async def test_patch_status_owned_to_inprogress(call, db: Database, scene: Scene):
    task = scene.acme.tasks[0]
    assert (await call("PUT", task_path(task.id, "/ownership"), as_="bob"))[0] == 200
    status, body = await call(
        "PATCH", task_path(task.id, "/status"), as_="bob", json={"status": "inprogress"}
    )
    assert status == 200
    assert_task_json(body)
    assert (body["id"], body["status"], body["owner_user_id"]) == (
        str(task.id),
        "inprogress",
        str(scene.bob.id),
    )
    assert (await fetch_task(db, task.id)).status == "inprogress"
    assert (await events_of(db, task.id))[-1].type == "status_changed"


@pytest.mark.parametrize(
    ("setup", "target"),
    [
        ((), "inprogress"),  # available → in progress skips taking
        ((), "completed"),  # available → completed
        ((), "available"),  # already there
        (("take",), "owned"),  # already there
        (("take", "start"), "inprogress"),
        (("take", "complete"), "available"),  # done → available: no such move
        (("take", "complete"), "inprogress"),
    ],
)
async def test_patch_status_illegal_moves_are_409(
    call, db: Database, scene: Scene, setup: tuple[str, ...], target: str
):
    task = scene.acme.tasks[0]
    for step in setup:
        method, rest = {
            "take": ("PUT", "/ownership"),
            "start": ("POST", "/work/start"),
            "complete": ("POST", "/work/complete"),
        }[step]
        assert (await call(method, task_path(task.id, rest), as_="bob"))[0] == 200
    before = await snapshot(db)
    status, body = await call(
        "PATCH", task_path(task.id, "/status"), as_="bob", json={"status": target}
    )
    assert status == 409, body
    assert_error(body, "conflict")
    assert await snapshot(db) == before


@pytest.mark.parametrize("payload", [{"status": "done"}, {"status": ""}, {}, {"status": 3}])
async def test_patch_status_invalid_value_is_422(
    call, db: Database, scene: Scene, payload: dict[str, Any]
):
    task = scene.acme.tasks[0]
    assert (await call("PUT", task_path(task.id, "/ownership"), as_="bob"))[0] == 200
    before = await snapshot(db)
    status, body = await call("PATCH", task_path(task.id, "/status"), as_="bob", json=payload)
    assert status == 422
    assert_error(body, "invalid")
    assert await snapshot(db) == before


async def test_patch_status_by_someone_else_is_409(call, db: Database, scene: Scene):
    task = scene.acme.tasks[0]
    assert (await call("PUT", task_path(task.id, "/ownership"), as_="bob"))[0] == 200
    before = await snapshot(db)
    status, body = await call(
        "PATCH", task_path(task.id, "/status"), as_="carol", json={"status": "inprogress"}
    )
    assert status == 409
    assert scene.bob.name in assert_error(body, "conflict")
    assert await snapshot(db) == before


# ---------------------------------------------------------------- work


async def test_start_and_complete_work(call, db: Database, scene: Scene):
    task = scene.acme.tasks[0]
    assert (await call("PUT", task_path(task.id, "/ownership"), as_="bob"))[0] == 200
    status, body = await call("POST", task_path(task.id, "/work/start"), as_="bob")
    assert status == 200 and body["success"] is True and body["message"]
    assert_task_json(body["task"])
    assert body["task"]["status"] == "inprogress"
    status, body = await call("POST", task_path(task.id, "/work/complete"), as_="bob")
    assert status == 200 and body["success"] is True
    assert_task_json(body["task"])
    assert body["task"]["status"] == "completed"
    assert body["task"]["owner_user_id"] == str(scene.bob.id)
    assert ISO_MS_Z.match(body["task"]["completed_at"])


async def test_starting_a_task_already_in_progress_is_409(call, db: Database, scene: Scene):
    task = scene.acme.tasks[0]
    assert (await call("PUT", task_path(task.id, "/ownership"), as_="bob"))[0] == 200
    assert (await call("POST", task_path(task.id, "/work/start"), as_="bob"))[0] == 200
    before = await snapshot(db)
    status, body = await call("POST", task_path(task.id, "/work/start"), as_="bob")
    assert status == 409
    assert "already in progress" in assert_error(body, "conflict")
    assert await snapshot(db) == before


@pytest.mark.parametrize("rest", ["/work/start", "/work/complete"])
async def test_work_on_an_available_task_is_409(call, db: Database, scene: Scene, rest: str):
    before = await snapshot(db)
    status, body = await call("POST", task_path(scene.acme.tasks[0].id, rest), as_="bob")
    assert status == 409
    assert_error(body, "conflict")
    assert await snapshot(db) == before


@pytest.mark.parametrize("rest", ["/work/start", "/work/complete"])
async def test_work_on_someone_elses_task_is_409(call, db: Database, scene: Scene, rest: str):
    task = scene.acme.tasks[0]
    assert (await call("PUT", task_path(task.id, "/ownership"), as_="bob"))[0] == 200
    before = await snapshot(db)
    status, body = await call("POST", task_path(task.id, rest), as_="carol")
    assert status == 409
    assert scene.bob.name in assert_error(body, "conflict")
    assert await snapshot(db) == before


async def test_completing_a_done_task_is_409(call, db: Database, scene: Scene):
    task = scene.acme.tasks[0]
    assert (await call("PUT", task_path(task.id, "/ownership"), as_="bob"))[0] == 200
    assert (await call("POST", task_path(task.id, "/work/complete"), as_="bob"))[0] == 200
    before = await snapshot(db)
    status, body = await call("POST", task_path(task.id, "/work/complete"), as_="bob")
    assert status == 409
    assert_error(body, "conflict")
    assert await snapshot(db) == before


# ---------------------------------------------------------------- history


async def test_history_newest_first_with_the_contract_shape(call, db: Database, scene: Scene):
    task = scene.acme.tasks[0]
    assert (await call("PUT", task_path(task.id, "/ownership"), as_="bob"))[0] == 200
    assert (await call("POST", task_path(task.id, "/work/start"), as_="bob"))[0] == 200
    assert (await call("DELETE", task_path(task.id, "/ownership"), as_="bob"))[0] == 200

    status, body = await call("GET", task_path(task.id, "/history"), as_="victor")
    assert status == 200
    assert set(body) == {"events"}
    events = body["events"]
    assert [e["type"] for e in events] == [
        "ownership_released",
        "status_changed",
        "ownership_taken",
        "task_created",
    ]
    ids = [e["id"] for e in events]
    assert all(type(i) is int for i in ids)
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
    assert ids == [e.id for e in reversed(await events_of(db, task.id))]
    for event in events:
        assert set(event) >= EVENT_KEYS, event
        assert event["organization_id"] == str(scene.acme.org.id)
        assert event["task_id"] == str(task.id)
        assert event["story_id"] == str(task.story_id)
        assert ISO_MS_Z.match(event["timestamp"]), event["timestamp"]
    released, started, taken, created = events
    bob = str(scene.bob.id)
    assert (taken["old_status"], taken["new_status"]) == ("available", "owned")
    assert (taken["owner_user_id"], taken["changed_by_user_id"]) == (bob, bob)
    assert (started["old_status"], started["new_status"]) == ("owned", "inprogress")
    assert (released["old_status"], released["new_status"]) == ("inprogress", "available")
    assert (released["previous_owner_user_id"], released["owner_user_id"]) == (bob, None)
    assert released["changed_by_user_id"] == bob
    assert created["new_status"] == "available"
    assert created["changed_by_user_id"] == str(scene.alice.id)


async def test_history_of_another_organizations_task_is_404(call, scene: Scene):
    status, body = await call("GET", task_path(scene.globex.tasks[0].id, "/history"), as_="alice")
    assert status == 404
    assert_error(body, "not_found")


@pytest.mark.parametrize(
    ("method", "rest", "payload"),
    [
        ("PUT", "/ownership", None),
        ("DELETE", "/ownership", None),
        ("PATCH", "/status", {"status": "owned"}),
        ("POST", "/work/start", None),
        ("POST", "/work/complete", None),
        ("GET", "/history", None),
    ],
)
async def test_another_organizations_task_is_404_on_every_task_route(
    call, db: Database, scene: Scene, method: str, rest: str, payload: Any
):
    foreign = scene.globex.tasks[0]
    await call("PUT", task_path(foreign.id, "/ownership"), as_="dave")  # owned, so all could apply
    before = await snapshot(db)
    kwargs = {"json": payload} if payload is not None else {}
    status, body = await call(method, task_path(foreign.id, rest), as_="alice", **kwargs)
    assert status == 404, body
    assert_error(body, "not_found")
    status, body = await call(method, task_path(999_999, rest), as_="alice", **kwargs)
    assert status == 404, body
    assert_error(body)
    assert await snapshot(db) == before


# ---------------------------------------------------------------- organization selection


async def make_dave_a_member_of_acme(db: Database, scene: Scene) -> None:
    await db.write(
        lambda s: add_member(s, org=scene.acme.org, email="dave@example.com", role=Role.MEMBER)
    )


async def test_a_member_of_two_organizations_chooses_one(call, db: Database, scene: Scene):
    await make_dave_a_member_of_acme(db, scene)
    status, me = await call("GET", "/api/v1/users/me", as_="dave")
    assert status == 200
    assert [(o["slug"], o["role"]) for o in me["organizations"]] == [
        ("globex", "owner"),
        ("acme", "member"),
    ]

    acme_board = f"/api/v1/sprints/{scene.acme.sprint.id}/tasks"
    globex_board = f"/api/v1/sprints/{scene.globex.sprint.id}/tasks"
    # No choice: the first organization (globex).
    assert (await call("GET", globex_board, as_="dave"))[0] == 200
    status, body = await call("GET", acme_board, as_="dave")
    assert status == 404
    assert_error(body, "not_found")
    # By header (slug or id), or by ?org=<slug>.
    for headers, query in (
        ({"X-Organization-Id": "acme"}, ""),
        ({"X-Organization-Id": str(scene.acme.org.id)}, ""),
        ({}, "?org=acme"),
    ):
        status, body = await call("GET", acme_board + query, as_="dave", headers=headers)
        assert status == 200, (headers, query, body)
        assert body["sprint"]["id"] == str(scene.acme.sprint.id)
        status, body = await call("GET", globex_board + query, as_="dave", headers=headers)
        assert status == 404
    # Acting in the chosen organization, with its role.
    task = scene.acme.tasks[0]
    status, body = await call(
        "PUT", task_path(task.id, "/ownership"), as_="dave", headers={"X-Organization-Id": "acme"}
    )
    assert status == 200
    assert body["task"]["owner_user_id"] == str(scene.dave.id)
    # Acme's users are visible now that they share an organization.
    assert (await call("GET", f"/api/v1/users/{scene.alice.id}", as_="dave"))[0] == 200


async def test_choosing_an_organization_one_is_not_in_is_404(call, db: Database, scene: Scene):
    before = await snapshot(db)
    for headers, query in (
        ({"X-Organization-Id": "globex"}, ""),
        ({}, "?org=globex"),
        ({"X-Organization-Id": "nowhere"}, ""),
    ):
        status, body = await call(
            "PUT",
            task_path(scene.globex.tasks[0].id, "/ownership") + query,
            as_="alice",
            headers=headers,
        )
        assert status == 404, (headers, query, body)
        assert_error(body, "not_found")
    assert await snapshot(db) == before


# ---------------------------------------------------------------- cookie-authenticated API


async def test_cookie_mutations_with_json_are_allowed(sign_in_as, db: Database, scene: Scene):
    client = await sign_in_as(scene.bob)
    task = scene.acme.tasks[0]
    response = await client.put(task_path(task.id, "/ownership"), headers=JSON, data=b"")
    assert response.status_code == 200, await response.get_data()
    response = await client.patch(task_path(task.id, "/status"), json={"status": "inprogress"})
    assert response.status_code == 200
    response = await client.post(
        f"/api/v1/stories/{scene.acme.stories[0].id}/tasks",
        json={"title": "From the browser", "acceptance_criteria_refs": []},
    )
    assert response.status_code == 201
    response = await client.post(task_path(task.id, "/work/complete"), headers=JSON, data=b"")
    assert response.status_code == 200
    assert (await fetch_task(db, task.id)).status == "completed"


@pytest.mark.parametrize(
    "hostile",
    [{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}],
)
async def test_cookie_mutations_from_another_site_are_403(
    sign_in_as, db: Database, scene: Scene, hostile: dict[str, str]
):
    client = await sign_in_as(scene.bob)
    task = scene.acme.tasks[0]
    before = await snapshot(db)
    attempts = [
        client.put(task_path(task.id, "/ownership"), headers={**JSON, **hostile}, data=b""),
        client.post(
            f"/api/v1/stories/{scene.acme.stories[0].id}/tasks",
            headers=hostile,
            json={"title": "Forged"},
        ),
        client.patch(task_path(task.id, "/status"), headers=hostile, json={"status": "owned"}),
        client.post(task_path(task.id, "/work/start"), headers={**JSON, **hostile}, data=b""),
    ]
    for attempt in attempts:
        response = await attempt
        assert response.status_code == 403
        assert_error(await response.get_json(), "forbidden")
    assert await snapshot(db) == before


async def test_cookie_form_post_without_csrf_token_is_403(sign_in_as, db: Database, scene: Scene):
    """A plain form POST can be sent cross-site without a preflight, so it needs the token."""
    client = await sign_in_as(scene.bob)
    before = await snapshot(db)
    response = await client.post(
        f"/api/v1/stories/{scene.acme.stories[0].id}/tasks", form={"title": "Forged"}
    )
    assert response.status_code == 403
    assert_error(await response.get_json(), "forbidden")
    assert await snapshot(db) == before


async def test_same_origin_cookie_mutation_is_allowed(sign_in_as, db: Database, scene: Scene):
    client = await sign_in_as(scene.bob)
    task = scene.acme.tasks[0]
    response = await client.put(
        task_path(task.id, "/ownership"),
        headers={**JSON, "Origin": "http://127.0.0.1:8000", "Sec-Fetch-Site": "same-origin"},
        data=b"",
    )
    assert response.status_code == 200
    taken = await fetch_task(db, task.id)
    assert (taken.status, taken.owner_id) == ("owned", scene.bob.id)


# ---------------------------------------------------------------- OpenAPI


async def test_openapi_documents_only_the_json_api(app: Quart):
    response = await app.test_client().get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    doc = await response.get_json()
    assert isinstance(doc, dict) and str(doc["openapi"]).startswith("3.")
    paths = doc["paths"]
    assert paths and all(p.startswith("/api/v1/") for p in paths), list(paths)
    for path, methods in {
        "/api/v1/users/me": {"get"},
        "/api/v1/users/{user_id}": {"get"},
        "/api/v1/sprints/{sprint_id}/tasks": {"get"},
        "/api/v1/stories/{story_id}/tasks": {"get", "post"},
        "/api/v1/tasks/{task_id}/ownership": {"put", "delete"},
        "/api/v1/tasks/{task_id}/status": {"patch"},
        "/api/v1/tasks/{task_id}/work/start": {"post"},
        "/api/v1/tasks/{task_id}/work/complete": {"post"},
        "/api/v1/tasks/{task_id}/history": {"get"},
    }.items():
        assert path in paths, path
        assert methods <= set(paths[path]), (path, list(paths[path]))
    schemes = doc["components"]["securitySchemes"]
    assert any(
        s.get("type") == "http" and s.get("scheme", "").lower() == "bearer"
        for s in schemes.values()
    ), schemes
    assert doc.get("security"), "the bearer scheme applies to the API"
    assert {name for req in doc["security"] for name in req} <= set(schemes)


# ---------------------------------------------------------------- odd input never breaks the API


@pytest.mark.parametrize(
    ("method", "rest", "payload"),
    [
        ("GET", "/history", None),
        ("PUT", "/ownership", None),
        ("PATCH", "/status", {"status": "owned"}),
    ],
)
async def test_an_id_too_large_for_the_database_is_404(
    call, db: Database, scene: Scene, method: str, rest: str, payload: Any
):
    """An id no row can have names nothing: 404, like any unknown id (found by the fuzzer)."""
    huge = 2**64 + 1
    before = await snapshot(db)
    kwargs = {"json": payload} if payload is not None else {}
    for path in (
        task_path(huge, rest),
        f"/api/v1/users/{huge}",
        f"/api/v1/sprints/{huge}/tasks",
        f"/api/v1/stories/{huge}/tasks",
    ):
        if not path.startswith("/api/v1/tasks/") and method != "GET":
            continue
        status, body = await call(method, path, as_="alice", **kwargs)
        assert status == 404, (path, status, body)
        assert_error(body, "not_found")
    assert await snapshot(db) == before


@pytest.mark.parametrize("where", ["header", "query"])
@pytest.mark.parametrize("ref", [str(2**64 + 1), "\u00b2", "-1", "0", ""])
async def test_an_odd_organization_reference_is_404_or_ignored(
    call, db: Database, scene: Scene, ref: str, where: str
):
    """Whatever names the organization, the answer is 404 (or, when empty, the default)."""
    before = await snapshot(db)
    kwargs: dict[str, Any] = (
        {"headers": {"X-Organization-Id": ref}}
        if where == "header"
        else {"query_string": {"org": ref}}
    )
    status, body = await call(
        "GET", f"/api/v1/sprints/{scene.acme.sprint.id}/tasks", as_="alice", **kwargs
    )
    if ref:
        assert status == 404, (ref, status, body)
        assert_error(body, "not_found")
    else:  # an empty choice is no choice: the first organization
        assert status == 200, body
    assert await snapshot(db) == before


@pytest.mark.parametrize("headers", [{}, {"Content-Type": "text/plain"}])
async def test_a_mutation_without_credentials_is_401_whatever_its_body(
    call, db: Database, scene: Scene, headers: dict[str, str]
):
    """No session and no token is 401 on the API, not a CSRF 403."""
    before = await snapshot(db)
    for method, path, _kwargs in every_route(scene):
        if method == "GET":
            continue
        status, body = await call(method, path, headers=headers, data=b"")
        assert status == 401, (method, path, headers, status, body)
        assert_error(body, "unauthenticated")
    assert await snapshot(db) == before


@pytest.mark.parametrize("raw", [b"{bad", b"n\xff\xfe\x16", b"\xff"])
async def test_a_body_that_is_not_json_is_refused_not_a_server_error(
    call, db: Database, scene: Scene, raw: bytes
):
    """Malformed JSON, or bytes that are not even UTF-8: a 4xx, and nothing changes."""
    task = scene.acme.tasks[0]
    assert (await call("PUT", task_path(task.id, "/ownership"), as_="bob"))[0] == 200
    before = await snapshot(db)
    for method, path in (
        ("PATCH", task_path(task.id, "/status")),
        ("POST", f"/api/v1/stories/{scene.acme.stories[0].id}/tasks"),
    ):
        status, body = await call(method, path, as_="bob", headers=JSON, data=raw)
        assert status == 400, (method, path, raw, status, body)
        assert_error(body, "bad_request")
    assert await snapshot(db) == before
