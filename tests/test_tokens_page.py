"""The API tokens page through the real app: shown once, works at once, revoked at once."""

from __future__ import annotations

import re

from quart import Quart
from sqlalchemy import select

from app.auth.accounts import hash_token
from app.db import Database
from app.events.hub import Closed
from app.models import ApiToken
from tests.conftest import CSRF
from tests.factories import Scene, token_for

PAGE = "/settings/tokens"
TOKEN_RE = re.compile(r'<code class="secret" id="new-token-value">(sbt_[\w-]+)</code>')


async def text(response) -> str:  # type: ignore[no-untyped-def]
    return str(await response.get_data(as_text=True))


async def tokens_in_db(db: Database) -> list[tuple[object, ...]]:
    async with db.read() as s:
        rows = await s.execute(
            select(ApiToken.id, ApiToken.user_id, ApiToken.name, ApiToken.revoked_at).order_by(
                ApiToken.id
            )
        )
        return [tuple(r) for r in rows]


async def create(client, name: str = "CI bot"):  # type: ignore[no-untyped-def]
    return await client.post(PAGE, form={"csrf_token": CSRF, "name": name})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_signed_out_visitors_go_to_sign_in(client, scene: Scene):
    response = await client.get(PAGE)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


async def test_the_page_lists_my_tokens_and_links_from_every_page(
    db: Database, sign_in_as, scene: Scene
):
    await token_for(db, scene.bob)
    await token_for(db, scene.carol)
    bob = await sign_in_as(scene.bob)
    html = await text(await bob.get(PAGE))
    assert html.count('<tr id="token-') == 1  # carol's is not mine
    assert "Never" in html and "Active" in html
    assert 'action="/logout/everywhere"' in html
    assert f'href="{PAGE}"' in html  # "Settings" in the top bar
    board = await text(await bob.get(f"/o/acme/sprints/{scene.acme.sprint.id}"))
    assert f'href="{PAGE}">Settings</a>' in board


async def test_a_new_token_is_shown_once_and_works_at_once(
    app: Quart, db: Database, sign_in_as, scene: Scene
):
    bob = await sign_in_as(scene.bob)
    response = await create(bob, "  CI bot  ")
    html = await text(response)
    assert response.status_code == 201
    found = TOKEN_RE.search(html)
    assert found, html
    token = found.group(1)
    assert "it will not be shown again" in html
    # Stored hashed, under its name, never in plain text.
    async with db.read() as s:
        row = await s.scalar(select(ApiToken).where(ApiToken.user_id == scene.bob.id))
    assert row is not None
    assert (row.name, row.token_hash, row.prefix) == ("CI bot", hash_token(token), token[:10])
    assert token not in (row.name, row.token_hash, row.prefix)

    me = await app.test_client().get("/api/v1/users/me", headers=bearer(token))
    assert me.status_code == 200
    assert (await me.get_json())["email"] == "bob@example.com"

    again = await text(await bob.get(PAGE))
    assert token not in again and 'id="new-token"' not in again
    assert "CI bot" in again and f"{token[:10]}…" in again


async def test_a_token_needs_a_name(db: Database, sign_in_as, scene: Scene):
    bob = await sign_in_as(scene.bob)
    for name in ("", "   ", "x" * 101):
        response = await create(bob, name)
        html = await text(response)
        assert response.status_code == 422
        assert 'class="flash flash-error"' in html and 'aria-invalid="true"' in html
        assert not TOKEN_RE.search(html)
    assert await tokens_in_db(db) == []


async def test_revoking_stops_the_token_at_once(app: Quart, db: Database, sign_in_as, scene: Scene):
    bob = await sign_in_as(scene.bob)
    token = TOKEN_RE.search(await text(await create(bob)))
    assert token
    api = app.test_client()
    assert (await api.get("/api/v1/users/me", headers=bearer(token.group(1)))).status_code == 200
    [(token_id, *_)] = await tokens_in_db(db)
    response = await bob.post(f"{PAGE}/{token_id}/revoke", form={"csrf_token": CSRF})
    assert response.status_code == 303 and response.headers["Location"] == PAGE
    assert (await api.get("/api/v1/users/me", headers=bearer(token.group(1)))).status_code == 401
    html = await text(await bob.get(PAGE))
    assert "The token “CI bot” is revoked." in html
    assert re.search(rf'<tr id="token-{token_id}" data-revoked="true">', html)
    assert f'action="{PAGE}/{token_id}/revoke"' not in html


async def test_revoking_ends_the_streams_of_that_token_only(app: Quart, sign_in_as, scene: Scene):
    bob = await sign_in_as(scene.bob)
    assert (await create(bob, "one")).status_code == 201
    assert (await create(bob, "two")).status_code == 201
    html = await text(await bob.get(PAGE))
    second, first = (int(i) for i in re.findall(r'<tr id="token-(\d+)"', html))
    hub = app.extensions["live"].hub
    org = scene.acme.org.id
    with (
        hub.subscribe(org, user_id=scene.bob.id, token_id=first) as revoked,
        hub.subscribe(org, user_id=scene.bob.id, token_id=second) as other,
    ):
        response = await bob.post(f"{PAGE}/{first}/revoke", form={"csrf_token": CSRF})
        assert response.status_code == 303
        closed = revoked.queue.get_nowait()
        assert isinstance(closed, Closed) and closed.reason == "token revoked"
        assert other.queue.empty()


async def test_nobody_revokes_someone_elses_token(
    app: Quart, db: Database, sign_in_as, scene: Scene
):
    token = await token_for(db, scene.carol)
    before = await tokens_in_db(db)
    [(token_id, *_)] = before
    bob = await sign_in_as(scene.bob)
    response = await bob.post(f"{PAGE}/{token_id}/revoke", form={"csrf_token": CSRF})
    assert response.status_code == 404
    assert await tokens_in_db(db) == before
    assert (
        await app.test_client().get("/api/v1/users/me", headers=bearer(token))
    ).status_code == 200


async def test_forms_without_the_csrf_token_are_refused(db: Database, sign_in_as, scene: Scene):
    await token_for(db, scene.bob)
    before = await tokens_in_db(db)
    [(token_id, *_)] = before
    bob = await sign_in_as(scene.bob)
    assert (await bob.post(PAGE, form={"name": "x"})).status_code == 403
    assert (await bob.post(f"{PAGE}/{token_id}/revoke", form={})).status_code == 403
    assert await tokens_in_db(db) == before


async def test_a_bearer_token_cannot_manage_tokens(app: Quart, db: Database, scene: Scene):
    token = await token_for(db, scene.bob)
    before = await tokens_in_db(db)
    [(token_id, *_)] = before
    api = app.test_client()
    assert (await api.get(PAGE, headers=bearer(token))).status_code == 403
    made = await api.post(PAGE, form={"name": "sneaky"}, headers=bearer(token))
    assert made.status_code == 403
    revoked = await api.post(f"{PAGE}/{token_id}/revoke", headers=bearer(token))
    assert revoked.status_code == 403
    assert await tokens_in_db(db) == before


async def test_using_a_token_records_when_it_was_last_used(app, db: Database, scene: Scene):
    from sqlalchemy import select

    from app.models import ApiToken
    from tests.factories import token_for

    token = await token_for(db, scene.bob)
    client = app.test_client()
    response = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    async with db.read() as s:
        row = await s.scalar(select(ApiToken).where(ApiToken.user_id == scene.bob.id))
    assert row is not None and row.last_used_at is not None
