"""Every route × every kind of visitor: what they get, and that refusals change nothing.

Columns: an owner and a member of acme, a viewer of acme, dave (who belongs only to
globex) asking for acme, dave asking through his own organization for acme's ids, and
someone signed out. Pages send the signed-out to sign-in; the API and streams say 401.
"""

from __future__ import annotations

import pytest

from app.db import Database
from tests.conftest import CSRF
from tests.factories import Scene, snapshot

WHO = ("alice", "bob", "victor", "dave", "dave-own-slug", None)

# method, path, body, then the status for each of WHO (None: signed out).
ROUTES = [
    ("GET", "/o/{org}/sprints/{sprint}", None, (200, 200, 200, 404, 404, 302)),
    ("GET", "/o/{org}/sprints", None, (200, 200, 200, 404, 200, 302)),
    (
        "POST",
        "/o/{org}/sprints",
        {"name": "S", "start_date": "2027-01-01", "end_date": "2027-01-10"},
        (303, 403, 403, 404, 303, 302),
    ),
    ("POST", "/o/{org}/sprints/{sprint}/advance", {}, (303, 403, 403, 404, 404, 302)),
    ("GET", "/o/{org}/tasks/{task}", None, (200, 200, 200, 404, 404, 302)),
    ("GET", "/o/{org}/tasks/{task}/edit", None, (200, 200, 403, 404, 404, 302)),
    ("POST", "/o/{org}/tasks/{task}/edit", {"title": "Renamed"}, (303, 303, 403, 404, 404, 302)),
    ("POST", "/o/{org}/tasks/{task}/take", {}, (303, 303, 403, 404, 404, 302)),
    ("GET", "/o/{org}/tasks/{task}/release", None, (200, 200, 200, 404, 404, 302)),
    ("GET", "/o/{org}/stories/{story}/tasks/new", None, (200, 200, 403, 404, 404, 302)),
    (
        "POST",
        "/o/{org}/stories/{story}/tasks/new",
        {"title": "New"},
        (303, 303, 403, 404, 404, 302),
    ),
    ("GET", "/o/{org}/stories/{story}/edit", None, (200, 403, 403, 404, 404, 302)),
    (
        "POST",
        "/o/{org}/stories/{story}/edit",
        {"title": "S", "points": "2"},
        (303, 403, 403, 404, 404, 302),
    ),
    ("GET", "/o/{org}/sprints/{sprint}/stories/new", None, (200, 403, 403, 404, 404, 302)),
    (
        "POST",
        "/o/{org}/sprints/{sprint}/stories/new",
        {"title": "S", "points": "2"},
        (303, 403, 403, 404, 404, 302),
    ),
    ("GET", "/o/{org}/events?after=abc", None, (400, 400, 400, 404, 400, 401)),
    ("GET", "/api/v1/sprints/{sprint}/tasks?org={org}", None, (200, 200, 200, 404, 404, 401)),
    ("GET", "/api/v1/tasks/{task}?org={org}", None, (200, 200, 200, 404, 404, 401)),
    ("GET", "/api/v1/tasks/{task}/history?org={org}", None, (200, 200, 200, 404, 404, 401)),
    ("PUT", "/api/v1/tasks/{task}/ownership?org={org}", None, (200, 200, 403, 404, 404, 401)),
    (
        "PATCH",
        "/api/v1/tasks/{task}/status?org={org}",
        {"status": "owned"},
        (200, 200, 403, 404, 404, 401),
    ),
    (
        "POST",
        "/api/v1/stories/{story}/tasks?org={org}",
        {"title": "New"},
        (201, 201, 403, 404, 404, 401),
    ),
    ("GET", "/api/v1/stories/{story}/tasks?org={org}", None, (200, 200, 200, 404, 404, 401)),
]

CASES = [
    pytest.param(method, path, body, who, expected, id=f"{method} {path} as {who or 'nobody'}")
    for method, path, body, statuses in ROUTES
    for who, expected in zip(WHO, statuses, strict=True)
]


@pytest.mark.parametrize(("method", "path", "body", "who", "expected"), CASES)
async def test_route_answers_each_visitor_as_expected(
    app,
    db: Database,
    scene: Scene,
    sign_in_as,
    method: str,
    path: str,
    body: dict[str, str] | None,
    who: str | None,
    expected: int,
):
    acme = scene.acme
    org = "globex" if who == "dave-own-slug" else "acme"
    url = path.format(
        org=org, sprint=acme.sprint.id, task=acme.tasks[0].id, story=acme.stories[0].id
    )
    person = scene.people[who.split("-")[0]] if who else None
    client = await sign_in_as(person) if person else app.test_client()
    before = await snapshot(db)
    kwargs: dict[str, object] = {}
    if body is not None and path.startswith("/api/"):
        kwargs["json"] = body
    elif method != "GET":
        kwargs["form"] = {"csrf_token": CSRF, **(body or {})}
    response = await client.open(url, method=method, **kwargs)
    assert response.status_code == expected, await response.get_data(as_text=True)
    if expected == 302:
        assert response.headers["Location"].startswith("/login")
    if expected >= 400 or expected == 302:
        assert await snapshot(db) == before
