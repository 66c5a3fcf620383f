"""What every request pays for, kept cheap on purpose (see bench/findings.md): no hook
hops to a thread, and who is asking is revived from the cache as if just loaded."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from quart import Quart
from sqlalchemy import inspect
from sqlalchemy.orm.exc import DetachedInstanceError

from app.auth.identities import Snapshot
from app.models import Membership, Organization, User


def per_request_callables(app: Quart) -> Iterable[tuple[str, Callable[..., Any]]]:
    """Everything Quart awaits through `ensure_async` while it answers a request or a
    WebSocket: hooks, template context processors, error handlers and views."""
    registries = {
        "before_request": app.before_request_funcs,
        "after_request": app.after_request_funcs,
        "teardown_request": app.teardown_request_funcs,
        "before_websocket": app.before_websocket_funcs,
        "after_websocket": app.after_websocket_funcs,
        "teardown_websocket": app.teardown_websocket_funcs,
        "context_processor": app.template_context_processors,
        "teardown_appcontext": {None: app.teardown_appcontext_funcs},
    }
    for kind, by_blueprint in registries.items():
        for functions in by_blueprint.values():
            for function in functions:
                yield kind, function
    for by_code in app.error_handler_spec.values():
        for handlers in by_code.values():
            for handler in handlers.values():
                yield "errorhandler", handler
    for view in app.view_functions.values():
        yield "view", view


async def test_no_hook_processor_handler_or_view_runs_on_a_thread(app: Quart) -> None:
    """Quart runs a plain `def` hook in its thread pool: a thread hop, a future and a
    context copy on every request. One such hook made opening a stream cost ~0.5 ms
    more (a third of it); every hook, processor and view must be `async def`."""
    found = list(per_request_callables(app))
    assert len(found) > 20  # the registries really were walked
    sync = [
        f"{kind}: {function.__module__}.{function.__qualname__}"
        for kind, function in found
        if app.ensure_async(function) is not function  # Quart's own test: wrapped to a thread
    ]
    assert sync == []


def loaded_membership() -> Membership:
    created = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)
    organization = Organization(
        id=7, slug="acme", name="Acme", last_event_id=41, time_zone="UTC", created_at=created
    )
    user = User(
        id=3,
        oidc_issuer="https://id.example",
        oidc_subject="alice",
        email="alice@example.com",
        name="Alice",
        created_at=created,
    )
    return Membership(
        id=11,
        org_id=7,
        user_id=3,
        role="owner",
        created_at=created,
        organization=organization,
        user=user,
    )


def test_a_revived_snapshot_is_a_detached_row_as_loaded() -> None:
    snapshot = Snapshot.of(
        loaded_membership(), related=("organization", "user"), leave_out=("last_event_id",)
    )
    membership = snapshot.revive()

    state = inspect(membership)
    assert state.detached and state.key == (Membership, (11,), None)
    assert not state.modified  # nothing for a session to write back
    assert (membership.role, membership.org_id, membership.user_id) == ("owner", 7, 3)
    assert membership.organization.slug == "acme"
    assert membership.user.email == "alice@example.com"
    assert inspect(membership.user).detached and not inspect(membership.user).modified
    # A column left out of the snapshot is not a silent None: reading it raises.
    with pytest.raises(DetachedInstanceError):
        _ = membership.organization.last_event_id


def test_each_revival_is_an_object_of_its_own() -> None:
    """A request may change what it was handed (in a session of its own); the cache's
    snapshot, and every other request's object, stay as they were."""
    snapshot = Snapshot.of(loaded_membership().user)
    first, second = snapshot.revive(), snapshot.revive()
    first.name = "Mallory"
    assert second.name == "Alice" and snapshot.revive().name == "Alice"
