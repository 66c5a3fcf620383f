"""Edits are never lost: two people save the same task or story from pages opened
before each other's save, through the real app (plain forms, no JavaScript)."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from urllib.parse import urlencode

from sqlalchemy import update
from werkzeug.datastructures import MultiDict

from app.db import Database
from app.models import Task
from app.tasks.lifecycle import Action
from tests.conftest import CSRF
from tests.factories import Scene, act, events_of, fetch_task, token_for


class FormReader(HTMLParser):
    """What a browser would send from the page's form, as served (before typing)."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: MultiDict[str, str] = MultiDict()
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text")
            if kind == "checkbox" and "checked" not in a:
                return
            self.fields.add(name, a.get("value") or "")
        elif tag == "textarea" and name:
            self._textarea = name
            self.fields.add(name, "")

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            values = self.fields.getlist(self._textarea)
            self.fields.setlist(self._textarea, [*values[:-1], values[-1] + data])

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None


def form_of(page: str) -> MultiDict[str, str]:
    reader = FormReader()
    reader.feed(page)
    reader.fields.setlist("csrf_token", [CSRF])
    return reader.fields


async def open_edit(client, path: str) -> MultiDict[str, str]:  # type: ignore[no-untyped-def]
    response = await client.get(path)
    assert response.status_code == 200
    return form_of(await response.get_data(as_text=True))


async def save(client, path: str, form: MultiDict[str, str], **typed: str):  # type: ignore[no-untyped-def]
    sent = MultiDict(form)
    for name, value in typed.items():
        sent.setlist(name, [value])
    body = urlencode(list(sent.items(multi=True)))
    return await client.post(
        path, data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )


def conflict_fields(page: str) -> dict[str, str]:
    """data-conflict-field → data-theirs, as the conflict view shows them."""
    found = re.findall(r'data-conflict-field="([^"]+)" data-theirs="([^"]*)"', page)
    return {name: html.unescape(theirs) for name, theirs in found}


def input_value(page: str, name: str) -> str:
    match = re.search(rf'<input id="{name}" name="{name}"[^>]*value="([^"]*)"', page, re.S)
    assert match, name
    return html.unescape(match.group(1))


async def both_editing(sign_in_as, scene: Scene):  # type: ignore[no-untyped-def]
    """Alice and Bob, each with the first task's edit page open: their clients, the
    task, the page's path, and the form each page holds."""
    alice, bob = await sign_in_as(scene.alice), await sign_in_as(scene.bob)
    task = scene.acme.tasks[0]
    path = f"/o/acme/tasks/{task.id}/edit"
    return alice, bob, task, path, await open_edit(alice, path), await open_edit(bob, path)


# --- tasks ---------------------------------------------------------------------------


async def test_the_edit_page_carries_its_version(sign_in_as, scene: Scene) -> None:
    alice = await sign_in_as(scene.alice)
    task = scene.acme.tasks[0]
    form = await open_edit(alice, f"/o/acme/tasks/{task.id}/edit")
    assert form["version"] == str(task.version)
    assert form["base-title"] == task.title


async def test_a_stale_title_is_a_conflict_showing_both_texts(
    db: Database, sign_in_as, scene: Scene
) -> None:
    alice, bob, task, path, alices, bobs = await both_editing(sign_in_as, scene)
    assert (await save(alice, path, alices, title="Fix the login title")).status_code == 303

    answer = await save(bob, path, bobs, title="Bob's other title", description="Bob wrote")
    page = await answer.get_data(as_text=True)

    assert answer.status_code == 409
    assert conflict_fields(page) == {"title": "Fix the login title"}
    assert "Alice" in page  # who changed it
    assert input_value(page, "title") == "Bob's other title"  # his text, kept
    stored = await fetch_task(db, task.id)
    assert stored.title == "Fix the login title"
    assert stored.description == task.description  # nothing of Bob's was saved


async def test_saving_the_conflict_view_again_applies_the_persons_choice(
    db: Database, sign_in_as, scene: Scene
) -> None:
    alice, bob, task, path, alices, bobs = await both_editing(sign_in_as, scene)
    await save(alice, path, alices, title="Alice's title")
    conflict = await save(bob, path, bobs, title="Bob's title")
    assert conflict.status_code == 409

    again = await save(bob, path, form_of(await conflict.get_data(as_text=True)))

    assert again.status_code == 303
    assert (await fetch_task(db, task.id)).title == "Bob's title"


async def test_saving_the_conflict_view_keeps_what_others_changed_elsewhere(
    db: Database, sign_in_as, scene: Scene
) -> None:
    """Alice changed the title and the description; Bob, from an older page, only the
    title. His conflict view holds her description (not the one his page showed), so
    saving it again keeps her description and applies his title."""
    alice, bob, task, path, alices, bobs = await both_editing(sign_in_as, scene)
    await save(alice, path, alices, title="Alice's title", description="Alice's words")
    conflict = await save(bob, path, bobs, title="Bob's title")
    page = await conflict.get_data(as_text=True)
    assert conflict.status_code == 409 and set(conflict_fields(page)) == {"title"}

    again = await save(bob, path, form_of(page))

    assert again.status_code == 303
    stored = await fetch_task(db, task.id)
    assert (stored.title, stored.description) == ("Bob's title", "Alice's words")


async def test_changes_to_different_fields_merge(db: Database, sign_in_as, scene: Scene) -> None:
    alice, bob, task, path, alices, bobs = await both_editing(sign_in_as, scene)
    await save(alice, path, alices, title="Alice's title")

    answer = await save(bob, path, bobs, description="Bob's description")

    assert answer.status_code == 303
    stored = await fetch_task(db, task.id)
    assert (stored.title, stored.description) == ("Alice's title", "Bob's description")
    edits = [e for e in await events_of(db, task.id) if e.type == "task_updated"]
    assert [e.fields for e in edits] == ["title", "description"]


async def test_the_same_change_by_both_is_no_conflict(
    db: Database, sign_in_as, scene: Scene
) -> None:
    alice, bob, task, path, alices, bobs = await both_editing(sign_in_as, scene)
    await save(alice, path, alices, title="Both thought of this", estimate_hours="3")

    answer = await save(bob, path, bobs, title="Both thought of this")

    assert answer.status_code == 303
    stored = await fetch_task(db, task.id)
    assert (stored.title, stored.estimate_hours) == ("Both thought of this", 3)


async def test_a_life_cycle_change_in_between_is_no_conflict(
    db: Database, sign_in_as, scene: Scene
) -> None:
    alice = await sign_in_as(scene.alice)
    task = scene.acme.tasks[0]
    path = f"/o/acme/tasks/{task.id}/edit"
    alices = await open_edit(alice, path)
    await act(db, scene.acme, task, Action.TAKE, scene.bob)
    await act(db, scene.acme, task, Action.START, scene.bob)

    answer = await save(alice, path, alices, title="Renamed while Bob works")

    assert answer.status_code == 303
    stored = await fetch_task(db, task.id)
    assert stored.title == "Renamed while Bob works"
    assert (stored.owner_id, stored.status) == (scene.bob.id, "inprogress")


async def test_an_estimate_cleared_by_giving_the_task_up_names_who_gave_it_up(
    db: Database, sign_in_as, scene: Scene
) -> None:
    """Giving a task up clears its estimate: a page that changed the estimate meanwhile
    meets that as a conflict, and the view names who gave the task up."""
    alice = await sign_in_as(scene.alice)
    task = scene.acme.tasks[0]
    path = f"/o/acme/tasks/{task.id}/edit"
    page = await open_edit(alice, path)
    await act(db, scene.acme, task, Action.TAKE, scene.carol)
    await act(db, scene.acme, task, Action.RELEASE, scene.carol)

    answer = await save(alice, path, page, estimate_hours="5")

    shown = await answer.get_data(as_text=True)
    assert answer.status_code == 409
    assert conflict_fields(shown) == {"estimate_hours": ""}
    assert re.search(r"<strong>Carol[^<]*</strong> changed the estimate", shown)


async def test_a_stale_page_without_its_values_clashes_on_every_difference(
    db: Database, sign_in_as, scene: Scene
) -> None:
    """A page that lost its hidden `base-…` fields cannot tell its person's changes from
    others': whatever differs is a conflict rather than an overwrite."""
    alice, bob, task, path, alices, bobs = await both_editing(sign_in_as, scene)
    await save(alice, path, alices, description="Alice's words")
    for name in [k for k in bobs if k.startswith("base-")]:
        del bobs[name]

    answer = await save(bob, path, bobs)

    assert answer.status_code == 409
    assert set(conflict_fields(await answer.get_data(as_text=True))) == {"description"}
    assert (await fetch_task(db, task.id)).description == "Alice's words"


# --- stories -------------------------------------------------------------------------


async def test_story_edits_merge_and_a_criterion_reworded_twice_is_a_conflict(
    db: Database, sign_in_as, scene: Scene
) -> None:
    """Two owners' tabs (alice twice): points and AC1 changed on one, AC1 and the title
    on the other. The title merges; AC1 clashes, and nothing of the second is saved."""
    first, second = await sign_in_as(scene.alice), await sign_in_as(scene.alice)
    story = scene.acme.stories[0]
    path = f"/o/acme/stories/{story.id}/edit"
    one, two = await open_edit(first, path), await open_edit(second, path)
    assert "ac-1-then" in one, "the scene's first story has criteria"
    saved = await save(first, path, one, points="5", **{"ac-1-then": "it is fast"})
    assert saved.status_code == 303

    clash = await save(second, path, two, title="Renamed story", **{"ac-1-then": "it is cheap"})
    page = await clash.get_data(as_text=True)
    assert clash.status_code == 409
    assert set(conflict_fields(page)) == {"ac-1"}
    assert "it is fast" in conflict_fields(page)["ac-1"]

    merged = await save(second, path, two, title="Renamed story")
    assert merged.status_code == 303
    async with db.read() as session:
        from app.tasks.editing import load_story

        stored = await load_story(session, story.org_id, story.id)
        assert (stored.title, stored.points, stored.criteria[0].then) == (
            "Renamed story",
            5,
            "it is fast",
        )


async def test_a_new_criterion_typed_while_someone_added_one_is_kept(
    db: Database, sign_in_as, scene: Scene
) -> None:
    """Two owners' tabs on a story with AC1 and AC2: one adds AC3, the other (its page
    still showing a blank row labelled AC3) types a new criterion there. Both are kept:
    the second becomes AC4."""
    first, second = await sign_in_as(scene.alice), await sign_in_as(scene.alice)
    story = scene.acme.stories[0]
    path = f"/o/acme/stories/{story.id}/edit"
    one, two = await open_edit(first, path), await open_edit(second, path)
    added = {"new-1-given": "one", "new-1-when": "first", "new-1-then": "kept"}
    assert (await save(first, path, one, **added)).status_code == 303
    typed = {"new-1-given": "two", "new-1-when": "second", "new-1-then": "kept too"}

    assert (await save(second, path, two, **typed)).status_code == 303

    async with db.read() as session:
        from app.tasks.editing import load_story

        stored = await load_story(session, story.org_id, story.id)
    assert [(c.label, c.given) for c in stored.criteria][-2:] == [("AC3", "one"), ("AC4", "two")]


# --- the API: ETag and If-Match --------------------------------------------------------


async def api(app, db: Database, user, method: str, path: str, **kwargs):  # type: ignore[no-untyped-def]
    """(status, headers, json) of one API call as `user`, with a token of theirs."""
    token = await token_for(db, user)
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    response = await app.test_client().open(path, method=method, headers=headers, **kwargs)
    return response.status_code, response.headers, await response.get_json()


async def test_a_task_patch_needs_the_current_etag(app, db: Database, scene: Scene) -> None:
    task = scene.acme.tasks[0]
    path = f"/api/v1/tasks/{task.id}"
    status, headers, body = await api(app, db, scene.bob, "GET", path)
    assert status == 200
    first = headers["ETag"]
    assert first.startswith('"') and not first.startswith("W/")

    status, _, body = await api(app, db, scene.bob, "PATCH", path, json={"title": "No tag"})
    assert (status, body["error"]["code"]) == (428, "precondition_required")

    status, headers, body = await api(
        app, db, scene.bob, "PATCH", path, json={"title": "Tagged"}, headers={"If-Match": first}
    )
    assert (status, body["title"]) == (200, "Tagged")
    second = headers["ETag"]
    assert second != first

    status, _, body = await api(
        app, db, scene.carol, "PATCH", path, json={"title": "Stale"}, headers={"If-Match": first}
    )
    assert status == 412
    assert body["error"]["code"] == "precondition_failed"
    assert body["current"]["title"] == "Tagged"
    assert (await fetch_task(db, task.id)).title == "Tagged"

    # Any change moves the ETag on: a take too.
    await act(db, scene.acme, task, Action.TAKE, scene.carol)
    _, headers, _ = await api(app, db, scene.bob, "GET", path)
    assert headers["ETag"] not in (first, second)
    status, _, _ = await api(
        app, db, scene.bob, "PATCH", path, json={"title": "Late"}, headers={"If-Match": second}
    )
    assert status == 412


async def test_a_story_patch_needs_the_current_etag(app, db: Database, scene: Scene) -> None:
    story = scene.acme.stories[0]
    path = f"/api/v1/stories/{story.id}"
    status, headers, body = await api(app, db, scene.alice, "GET", path)
    assert status == 200 and body["title"] == story.title
    criteria = body["acceptance_criteria"]
    tag = headers["ETag"]

    status, _, _ = await api(app, db, scene.alice, "PATCH", path, json={"points": 2})
    assert status == 428
    reworded = [{**c, "then": "it is quick"} if c["label"] == "AC1" else c for c in criteria]
    added = [*({k: c[k] for k in ("given", "when", "then")} for c in reworded)]
    added.append({"given": "a new case", "when": "it runs", "then": "it passes"})
    status, headers, body = await api(
        app,
        db,
        scene.alice,
        "PATCH",
        path,
        json={"points": 2, "acceptance_criteria": added},
        headers={"If-Match": tag},
    )
    assert status == 200, body
    assert body["points"] == 2
    assert body["acceptance_criteria"][0]["then"] == "it is quick"
    assert body["acceptance_criteria"][-1]["label"] == f"AC{len(criteria) + 1}"
    assert headers["ETag"] != tag

    status, _, body = await api(
        app, db, scene.alice, "PATCH", path, json={"points": 3}, headers={"If-Match": tag}
    )
    assert status == 412 and body["current"]["points"] == 2


async def test_a_patch_with_null_leaves_a_field_as_it_is(app, db: Database, scene: Scene) -> None:
    task = scene.acme.tasks[0]
    path = f"/api/v1/tasks/{task.id}"
    _, headers, _ = await api(app, db, scene.bob, "GET", path)
    status, _, body = await api(
        app,
        db,
        scene.bob,
        "PATCH",
        path,
        json={"title": None, "acceptance_criteria_refs": None, "description": "Set"},
        headers={"If-Match": headers["ETag"]},
    )
    assert status == 200, body
    assert (body["title"], body["acceptance_criteria_refs"]) == (task.title, ["AC1"])
    assert body["description"] == "Set"


async def test_line_breaks_as_a_browser_sends_them_are_no_change(
    db: Database, sign_in_as, scene: Scene
) -> None:
    """A description written through the API with \\n comes back from a browser's form
    with \\r\\n: the same text, so saving the page changes nothing and names nothing."""
    alice = await sign_in_as(scene.alice)
    task = scene.acme.tasks[0]
    path = f"/o/acme/tasks/{task.id}/edit"
    await db.write(
        lambda s: s.execute(update(Task).where(Task.id == task.id).values(description="one\ntwo"))
    )
    form = await open_edit(alice, path)
    answer = await save(alice, path, form, description="one\r\ntwo")
    assert answer.status_code == 303
    assert [e.type for e in await events_of(db, task.id)].count("task_updated") == 0
