"""The members page through the real app: invitations, roles, removal, refusals, tenancy."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from quart import Quart
from sqlalchemy import select

from app.db import Database
from app.events.hub import Closed
from app.models import Invitation, Membership, Task
from tests.conftest import CSRF
from tests.factories import Scene, fetch_task, scene_with_token, token_for
from tests.server import Server, running_server
from tests.sse_client import open_stream

MEMBERS = "/o/acme/members"


async def memberships(db: Database) -> list[tuple[object, ...]]:
    """Every membership and invitation: compare before and after a refusal."""
    async with db.read() as s:
        members = (
            await s.execute(
                select(Membership.org_id, Membership.user_id, Membership.role).order_by(
                    Membership.org_id, Membership.user_id
                )
            )
        ).all()
        invitations = (
            await s.execute(
                select(
                    Invitation.org_id, Invitation.email, Invitation.role, Invitation.accepted_at
                ).order_by(Invitation.id)
            )
        ).all()
    return [("m", *r) for r in members] + [("i", *r) for r in invitations]


async def role_of(db: Database, org_id: int, user_id: int) -> str | None:
    async with db.read() as s:
        return await s.scalar(
            select(Membership.role).where(
                Membership.org_id == org_id, Membership.user_id == user_id
            )
        )


async def invitation_id(db: Database, email: str) -> int:
    async with db.read() as s:
        found = await s.scalar(select(Invitation.id).where(Invitation.email == email))
    assert found is not None
    return found


async def post(client, url: str, **fields: str):  # type: ignore[no-untyped-def]
    return await client.post(url, form={"csrf_token": CSRF, **fields})


async def invite(client, email: str, role: str = "member", org: str = "acme"):  # type: ignore[no-untyped-def]
    return await post(client, f"/o/{org}/members/invite", email=email, role=role)


async def text(response) -> str:  # type: ignore[no-untyped-def]
    return str(await response.get_data(as_text=True))


# ---------- the page ----------


async def test_signed_out_visitors_go_to_sign_in(client, scene: Scene):
    response = await client.get(MEMBERS)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


async def test_every_member_sees_members_and_open_invitations(sign_in_as, scene: Scene):
    await invite(await sign_in_as(scene.alice), "erin@example.com", "viewer")
    for who in (scene.bob, scene.victor):
        client = await sign_in_as(who)
        response = await client.get(MEMBERS)
        html = await text(response)
        assert response.status_code == 200
        for person in (scene.alice, scene.bob, scene.carol, scene.victor):
            row = re.search(rf'<tr id="member-{person.id}"[^>]*data-role="(\w+)"', html)
            assert row, person.name
            assert person.name in html and person.email in html
        assert re.search(r'<tr id="invitation-\d+" data-role="viewer">', html)
        assert "erin@example.com" in html
        assert "dave@example.com" not in html  # another organization's people
        # Owners' controls are not even rendered for others.
        assert "/members/invite" not in html
        assert "/role" not in html and "/remove" not in html and "/cancel" not in html
        assert f'href="{MEMBERS}"' in html  # the nav link


async def test_owners_get_the_controls(sign_in_as, scene: Scene):
    await invite(await sign_in_as(scene.alice), "erin@example.com")
    html = await text(await (await sign_in_as(scene.alice)).get(MEMBERS))
    assert f'action="{MEMBERS}/invite"' in html
    assert f'action="{MEMBERS}/{scene.bob.id}/role"' in html
    assert f'href="{MEMBERS}/{scene.bob.id}/remove"' in html
    assert re.search(rf'action="{MEMBERS}/invitations/\d+/cancel"', html)
    assert html.count('name="csrf_token"') >= 4


# ---------- owners' actions ----------


async def test_owner_invites_a_new_email(db: Database, sign_in_as, scene: Scene):
    client = await sign_in_as(scene.alice)
    response = await invite(client, " Erin@Example.com ", "viewer")
    assert response.status_code == 303
    assert response.headers["Location"] == MEMBERS
    async with db.read() as s:
        row = await s.scalar(select(Invitation).where(Invitation.email == "erin@example.com"))
    assert row is not None
    assert (row.org_id, row.role, row.invited_by_id) == (
        scene.acme.org.id,
        "viewer",
        scene.alice.id,
    )
    html = await text(await client.get(MEMBERS))
    assert "Invited erin@example.com to join as a viewer." in html


async def test_inviting_an_existing_user_makes_them_a_member(
    db: Database, sign_in_as, scene: Scene
):
    client = await sign_in_as(scene.alice)
    response = await invite(client, "dave@example.com", "member")
    assert response.status_code == 303
    assert await role_of(db, scene.acme.org.id, scene.dave.id) == "member"
    dave = await sign_in_as(scene.dave)
    board = await dave.get(f"/o/acme/sprints/{scene.acme.sprint.id}")
    assert board.status_code == 200


async def test_inviting_a_member_again_sets_their_role(db: Database, sign_in_as, scene: Scene):
    client = await sign_in_as(scene.alice)
    assert (await invite(client, "bob@example.com", "viewer")).status_code == 303
    assert await role_of(db, scene.acme.org.id, scene.bob.id) == "viewer"


@pytest.mark.parametrize(
    ("email", "role", "sentence"),
    [
        ("not-an-email", "member", "is not an email address"),
        ("", "member", "is not an email address"),
        ("erin@example.com", "admin", "is not a role"),
        ("erin@example.com", "", "is not a role"),
    ],
)
async def test_a_bad_invitation_is_422_and_changes_nothing(
    db: Database, sign_in_as, scene: Scene, email: str, role: str, sentence: str
):
    before = await memberships(db)
    client = await sign_in_as(scene.alice)
    response = await invite(client, email, role)
    html = await text(response)
    assert response.status_code == 422
    assert sentence in html and 'class="flash flash-error"' in html
    assert 'aria-invalid="true"' in html
    assert await memberships(db) == before


async def test_owner_changes_a_role_and_it_holds_on_the_next_request(
    db: Database, sign_in_as, scene: Scene
):
    bob = await sign_in_as(scene.bob)
    task = scene.acme.tasks[0]
    alice = await sign_in_as(scene.alice)
    response = await post(alice, f"{MEMBERS}/{scene.bob.id}/role", role="viewer")
    assert response.status_code == 303
    assert await role_of(db, scene.acme.org.id, scene.bob.id) == "viewer"
    assert "Bob is now a viewer." in await text(await alice.get(MEMBERS))
    taken = await post(bob, f"/o/acme/tasks/{task.id}/take")
    assert taken.status_code == 403
    assert (await fetch_task(db, task.id)).status == "available"


async def test_a_second_owner_can_be_made_and_then_step_down(
    db: Database, sign_in_as, scene: Scene
):
    alice = await sign_in_as(scene.alice)
    assert (await post(alice, f"{MEMBERS}/{scene.carol.id}/role", role="owner")).status_code == 303
    assert (await post(alice, f"{MEMBERS}/{scene.alice.id}/role", role="member")).status_code == 303
    assert await role_of(db, scene.acme.org.id, scene.alice.id) == "member"
    assert await role_of(db, scene.acme.org.id, scene.carol.id) == "owner"
    # Alice is no longer an owner: her next change is refused.
    refused = await post(alice, f"{MEMBERS}/{scene.bob.id}/role", role="viewer")
    assert refused.status_code == 403


async def test_removal_asks_first_without_javascript(sign_in_as, scene: Scene):
    alice = await sign_in_as(scene.alice)
    response = await alice.get(f"{MEMBERS}/{scene.bob.id}/remove")
    html = await text(response)
    assert response.status_code == 200
    assert "Remove Bob from Acme?" in html
    assert f'action="{MEMBERS}/{scene.bob.id}/remove"' in html and 'name="csrf_token"' in html
    assert f'href="{MEMBERS}"' in html


async def test_owner_removes_a_member_who_then_loses_access(
    db: Database, app: Quart, sign_in_as, scene: Scene
):
    task = scene.acme.tasks[0]
    token = await token_for(db, scene.bob)
    bob = await sign_in_as(scene.bob)
    assert (await post(bob, f"/o/acme/tasks/{task.id}/take")).status_code == 303
    api = app.test_client()
    bearer = {"Authorization": f"Bearer {token}", "X-Organization-Id": "acme"}
    assert (await api.get(f"/api/v1/tasks/{task.id}/history", headers=bearer)).status_code == 200

    alice = await sign_in_as(scene.alice)
    response = await post(alice, f"{MEMBERS}/{scene.bob.id}/remove")
    assert response.status_code == 303 and response.headers["Location"] == MEMBERS
    assert await role_of(db, scene.acme.org.id, scene.bob.id) is None
    assert "Bob is no longer a member of Acme." in await text(await alice.get(MEMBERS))

    assert (await bob.get(f"/o/acme/sprints/{scene.acme.sprint.id}")).status_code == 404
    assert (await bob.get(MEMBERS)).status_code == 404
    assert (await api.get(f"/api/v1/tasks/{task.id}/history", headers=bearer)).status_code == 404
    sprint = f"/api/v1/sprints/{scene.acme.sprint.id}/tasks"
    assert (await api.get(sprint, headers=bearer)).status_code == 404
    me = await api.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert [o["slug"] for o in (await me.get_json())["organizations"]] == []
    # The task keeps its owner: the board and its history stay true.
    assert (await fetch_task(db, task.id)).owner_id == scene.bob.id


async def test_an_owner_may_leave_when_another_owner_stays(db: Database, sign_in_as, scene: Scene):
    alice = await sign_in_as(scene.alice)
    await post(alice, f"{MEMBERS}/{scene.carol.id}/role", role="owner")
    response = await post(alice, f"{MEMBERS}/{scene.alice.id}/remove")
    assert response.status_code == 303 and response.headers["Location"] == "/"
    assert await role_of(db, scene.acme.org.id, scene.alice.id) is None


async def test_owner_cancels_an_invitation(db: Database, sign_in_as, scene: Scene):
    alice = await sign_in_as(scene.alice)
    await invite(alice, "erin@example.com")
    found = await invitation_id(db, "erin@example.com")
    response = await post(alice, f"{MEMBERS}/invitations/{found}/cancel")
    assert response.status_code == 303
    async with db.read() as s:
        assert await s.scalar(select(Invitation.id).where(Invitation.id == found)) is None
    assert "The invitation to erin@example.com is cancelled." in await text(
        await alice.get(MEMBERS)
    )


# ---------- refusals ----------


@pytest.mark.parametrize("who", ["bob", "victor"])
@pytest.mark.parametrize(
    "action", ["invite", "invite-self-owner", "role", "remove", "confirm", "cancel"]
)
async def test_only_owners_manage_members(
    db: Database, sign_in_as, scene: Scene, who: str, action: str
):
    await invite(await sign_in_as(scene.alice), "erin@example.com")
    invitation = await invitation_id(db, "erin@example.com")
    before = await memberships(db)
    person = scene.people[who]
    client = await sign_in_as(person)
    target = scene.carol.id
    if action == "invite":
        response = await invite(client, "mallory@example.com", "owner")
    elif action == "invite-self-owner":
        response = await invite(client, person.email, "owner")
    elif action == "role":
        response = await post(client, f"{MEMBERS}/{person.id}/role", role="owner")
    elif action == "remove":
        response = await post(client, f"{MEMBERS}/{target}/remove")
    elif action == "confirm":
        response = await client.get(f"{MEMBERS}/{target}/remove")
    else:
        response = await post(client, f"{MEMBERS}/invitations/{invitation}/cancel")
    assert response.status_code == 403
    assert "Only owners" in await text(response)
    assert await memberships(db) == before


async def test_a_post_without_the_csrf_token_is_refused(db: Database, sign_in_as, scene: Scene):
    before = await memberships(db)
    alice = await sign_in_as(scene.alice)
    response = await alice.post(f"{MEMBERS}/{scene.bob.id}/remove", form={})
    assert response.status_code == 403
    assert await memberships(db) == before


@pytest.mark.parametrize(
    "attempt",
    [
        ("role", {"role": "member"}),
        ("role", {"role": "viewer"}),
        ("remove", {}),
        ("invite", {"email": "alice@example.com", "role": "member"}),
    ],
)
async def test_the_last_owner_cannot_be_demoted_or_removed(
    db: Database, sign_in_as, scene: Scene, attempt: tuple[str, dict[str, str]]
):
    kind, fields = attempt
    before = await memberships(db)
    alice = await sign_in_as(scene.alice)
    if kind == "invite":
        response = await invite(alice, fields["email"], fields["role"])
    else:
        response = await post(alice, f"{MEMBERS}/{scene.alice.id}/{kind}", **fields)
    assert response.status_code == 409
    assert "Alice is the last owner of this organization" in await text(response)
    assert await memberships(db) == before


async def test_the_last_owner_may_stay_an_owner(db: Database, sign_in_as, scene: Scene):
    alice = await sign_in_as(scene.alice)
    response = await post(alice, f"{MEMBERS}/{scene.alice.id}/role", role="owner")
    assert response.status_code == 303
    assert await role_of(db, scene.acme.org.id, scene.alice.id) == "owner"


@pytest.mark.parametrize("kind", ["role", "remove", "confirm", "cancel", "stranger"])
async def test_another_organizations_people_are_not_found(
    db: Database, sign_in_as, scene: Scene, kind: str
):
    await invite(await sign_in_as(scene.dave), "zed@example.com", org="globex")
    globex_invitation = await invitation_id(db, "zed@example.com")
    before = await memberships(db)
    alice = await sign_in_as(scene.alice)
    dave = scene.dave.id
    if kind == "role":
        response = await post(alice, f"{MEMBERS}/{dave}/role", role="viewer")
    elif kind == "remove":
        response = await post(alice, f"{MEMBERS}/{dave}/remove")
    elif kind == "confirm":
        response = await alice.get(f"{MEMBERS}/{dave}/remove")
    elif kind == "cancel":
        response = await post(alice, f"{MEMBERS}/invitations/{globex_invitation}/cancel")
    else:  # an organization alice is not in
        response = await post(alice, f"/o/globex/members/{dave}/remove")
    assert response.status_code == 404
    assert await memberships(db) == before


# ---------- live streams ----------


@pytest.mark.parametrize("change", ["remove", "demote"])
async def test_a_change_ends_that_persons_streams_in_that_organization(
    app: Quart, sign_in_as, scene: Scene, change: str
):
    hub = app.extensions["live"].hub
    alice = await sign_in_as(scene.alice)
    with (
        hub.subscribe(scene.acme.org.id, user_id=scene.bob.id) as bobs,
        hub.subscribe(scene.acme.org.id, user_id=scene.carol.id) as carols,
        hub.subscribe(scene.globex.org.id, user_id=scene.bob.id) as elsewhere,
    ):
        if change == "remove":
            response = await post(alice, f"{MEMBERS}/{scene.bob.id}/remove")
        else:
            response = await post(alice, f"{MEMBERS}/{scene.bob.id}/role", role="viewer")
        assert response.status_code == 303
        closed = bobs.queue.get_nowait()
        assert isinstance(closed, Closed) and closed.reason == "membership changed"
        assert carols.queue.empty() and elsewhere.queue.empty()


async def test_a_refused_change_ends_no_stream(app: Quart, sign_in_as, scene: Scene):
    hub = app.extensions["live"].hub
    alice = await sign_in_as(scene.alice)
    with hub.subscribe(scene.acme.org.id, user_id=scene.alice.id) as mine:
        response = await post(alice, f"{MEMBERS}/{scene.alice.id}/remove")
        assert response.status_code == 409
        assert mine.queue.empty()


@pytest.fixture
async def acme_server(database_url: str) -> AsyncIterator[tuple[Server, Scene, str]]:
    """A real Hypercorn process on the test scene, and a bearer token of bob's."""
    scene, token = await scene_with_token(database_url)
    with running_server(database_url, SPRINTBOARD_HEARTBEAT_SECONDS="0.5") as server:
        yield server, scene, token


async def sign_in_with_form(http: httpx.AsyncClient, email: str) -> str:
    """Development sign-in through the real form; returns the session's CSRF token."""
    page = (await http.get("/login")).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    response = await http.post("/login/dev", data={"csrf_token": token.group(1), "email": email})
    assert response.status_code == 303, response.text
    fresh = re.search(r'name="csrf_token" value="([^"]+)"', (await http.get(MEMBERS)).text)
    assert fresh
    return fresh.group(1)


@pytest.mark.server
async def test_removing_a_member_closes_their_open_stream(
    acme_server: tuple[Server, Scene, str],
):
    server, scene, token = acme_server
    bearer = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=30) as http,
        httpx.AsyncClient(base_url=server.url, timeout=30) as owner,
        open_stream(http, "/o/acme/events", bearer) as stream,
    ):
        assert stream.response.status_code == 200
        assert (await stream.next()).kind == "retry"
        assert (await stream.next(wait=5)).kind == "comment"  # open and alive
        csrf = await sign_in_with_form(owner, "alice@example.com")
        removed = await owner.post(f"{MEMBERS}/{scene.bob.id}/remove", data={"csrf_token": csrf})
        assert removed.status_code == 303, removed.text

        async def until_the_end() -> None:
            while True:
                await stream.next(wait=5)

        with pytest.raises(EOFError):
            await asyncio.wait_for(until_the_end(), 5)
        again = await http.get("/o/acme/events", headers=bearer)
        assert again.status_code == 404


async def test_tasks_of_a_removed_member_are_still_listed(db: Database, sign_in_as, scene: Scene):
    bob = await sign_in_as(scene.bob)
    task = scene.acme.tasks[1]
    await post(bob, f"/o/acme/tasks/{task.id}/take")
    await post(await sign_in_as(scene.alice), f"{MEMBERS}/{scene.bob.id}/remove")
    carol = await sign_in_as(scene.carol)
    html = await text(await carol.get(f"/o/acme/sprints/{scene.acme.sprint.id}"))
    assert f'data-owner-id="{scene.bob.id}"' in html
    async with db.read() as s:
        owner = await s.scalar(select(Task.owner_id).where(Task.id == task.id))
    assert owner == scene.bob.id


async def test_a_person_in_two_organizations_can_switch_between_them(
    db: Database, scene: Scene, sign_in_as
):
    from app.auth.accounts import add_member, find_org
    from app.models import Role

    async def join_globex(s):  # type: ignore[no-untyped-def]
        await add_member(
            s, org=await find_org(s, "globex"), email="bob@example.com", role=Role.MEMBER
        )

    await db.write(join_globex)
    client = await sign_in_as(scene.bob)
    page = await (await client.get(f"/o/acme/sprints/{scene.acme.sprint.id}")).get_data(
        as_text=True
    )
    assert 'class="switcher"' in page
    assert 'href="/o/acme/sprints"' in page and 'href="/o/globex/sprints"' in page
    assert (await client.get(f"/o/globex/sprints/{scene.globex.sprint.id}")).status_code == 200
