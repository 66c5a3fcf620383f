"""Sign-in through a real OpenID Connect provider on loopback, and every way it can fail.

The provider (oidc-provider-mock) and the app (a real Hypercorn process, in production
mode) talk over HTTP exactly as in life; nothing in between is replaced.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from playwright.async_api import Browser, expect

from app.auth.accounts import add_member, create_org, find_org, find_user_by_email
from app.auth.oidc import OIDCClient, SignInRefused
from app.config import Settings
from app.db import Database
from app.demo import load_demo
from app.models import Role
from tests.oidc_provider import Provider, running_provider
from tests.server import Server, free_port, running_server

pytestmark = pytest.mark.server

CLIENT_ID = "sprintboard"


@dataclass
class Site:
    app: Server
    provider: Provider
    database_url: str


def app_env(provider: Provider, port: int) -> dict[str, str]:
    return {
        "SPRINTBOARD_ENV": "production",
        "OIDC_ISSUER": provider.issuer,
        "OIDC_CLIENT_ID": CLIENT_ID,
        "OIDC_CLIENT_SECRET": "not-so-secret",
        "BASE_URL": f"http://127.0.0.1:{port}",
        "AUTHLIB_INSECURE_TRANSPORT": "1",
    }


@pytest.fixture
def provider() -> Iterator[Provider]:
    with running_provider() as running:
        running.person("alice-sub", email="alice@example.com", name="Alice Archer")
        yield running


@pytest.fixture
async def site(database_url: str, provider: Provider) -> AsyncIterator[Site]:
    db = Database(database_url)
    try:
        await db.write(
            lambda s: create_org(s, slug="acme", name="Acme", owner_email="alice@example.com")
        )
    finally:
        await db.close()
    port = free_port()
    with running_server(database_url, port=port, **app_env(provider, port)) as app:
        yield Site(app, provider, database_url)


def client(site: Site) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=site.app.url, follow_redirects=False, timeout=20)


async def start(http: httpx.AsyncClient) -> str:
    """GET /login: the URL of the provider's authorization page."""
    response = await http.get("/login")
    assert response.status_code == 302
    return response.headers["location"]


async def authorize(authorize_url: str, sub: str) -> str:
    """Approve at the provider as `sub`: the callback URL it sends the browser back to."""
    async with httpx.AsyncClient(follow_redirects=False) as browser:
        response = await browser.post(authorize_url, data={"sub": sub})
    assert response.status_code == 302, response.text
    return response.headers["location"]


def with_param(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


async def signed_in(http: httpx.AsyncClient) -> bool:
    return (await http.get("/api/v1/users/me")).status_code == 200


async def test_the_authorization_request_uses_pkce_state_and_nonce(site: Site):
    async with client(site) as http:
        url = await start(http)
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(site.provider.issuer + "/oauth2/authorize")
    assert query["client_id"] == [CLIENT_ID] and query["response_type"] == ["code"]
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) >= 43
    assert len(query["state"][0]) >= 20 and len(query["nonce"][0]) >= 20
    assert query["redirect_uri"] == [f"{site.app.url}/auth/callback"]
    assert "openid" in query["scope"][0].split() and "email" in query["scope"][0].split()


async def test_an_invited_person_signs_in_and_becomes_a_member(site: Site):
    async with client(site) as http:
        callback = await authorize(await start(http), "alice-sub")
        finished = await http.get(callback)
        assert finished.status_code == 303
        me = (await http.get("/api/v1/users/me")).json()
    assert me["email"] == "alice@example.com" and me["name"] == "Alice Archer"
    assert [(o["slug"], o["role"]) for o in me["organizations"]] == [("acme", "owner")]


async def test_the_session_cookie_is_rotated_at_sign_in(site: Site):
    async with client(site) as http:
        await http.get("/login")
        before = http.cookies.get("sprintboard_session")
        callback = await authorize(await start(http), "alice-sub")
        await http.get(callback)
        after = http.cookies.get("sprintboard_session")
    assert before and after and before != after


async def test_a_tampered_state_is_refused(site: Site):
    async with client(site) as http:
        callback = await authorize(await start(http), "alice-sub")
        refused = await http.get(with_param(callback, state="forged-state-value"))
        assert refused.status_code == 400
        assert "expired or was already used" in refused.text
        assert not await signed_in(http)


async def test_a_replayed_callback_is_refused(site: Site):
    async with client(site) as http:
        callback = await authorize(await start(http), "alice-sub")
        assert (await http.get(callback)).status_code == 303
        await http.post("/logout", headers={"Origin": site.app.url})
    async with client(site) as other:
        # The same callback URL again, even from another browser, signs nobody in.
        assert (await other.get(callback)).status_code == 400
        assert not await signed_in(other)


async def test_a_token_with_another_nonce_is_refused(site: Site):
    async with client(site) as http:
        real = await start(http)
        # Same state and PKCE challenge, but the provider is asked for another nonce.
        callback = await authorize(with_param(real, nonce="not-the-nonce-we-sent"), "alice-sub")
        refused = await http.get(callback)
        assert refused.status_code == 400 and "did not check out" in refused.text
        assert not await signed_in(http)


async def test_a_code_issued_to_another_client_is_refused(site: Site):
    async with client(site) as http:
        real = await start(http)
        callback = await authorize(with_param(real, client_id="someone-else"), "alice-sub")
        refused = await http.get(callback)
        assert refused.status_code == 400
        assert not await signed_in(http)


async def test_an_unverified_email_is_refused(site: Site):
    site.provider.person("mallory-sub", email="alice@example.com", name="Not Alice", verified=False)
    async with client(site) as http:
        callback = await authorize(await start(http), "mallory-sub")
        refused = await http.get(callback)
        assert refused.status_code == 400 and "has not verified" in refused.text
        assert not await signed_in(http)


async def test_an_expired_id_token_is_refused(database_url: str):
    with running_provider(token_max_age=dt.timedelta(minutes=-5)) as provider:
        provider.person("alice-sub", email="alice@example.com", name="Alice Archer")
        port = free_port()
        with running_server(database_url, port=port, **app_env(provider, port)) as app:
            site = Site(app, provider, database_url)
            async with client(site) as http:
                callback = await authorize(await start(http), "alice-sub")
                refused = await http.get(callback)
                assert refused.status_code == 400 and "did not check out" in refused.text
                assert not await signed_in(http)


async def test_someone_nobody_invited_signs_in_to_an_empty_home(site: Site):
    site.provider.person("stranger-sub", email="stranger@example.com", name="Stranger")
    async with client(site) as http:
        await http.get(await authorize(await start(http), "stranger-sub"))
        home = await http.get("/")
        assert home.status_code == 200 and "not in any organization" in home.text


async def test_sign_out_ends_at_the_provider_too(site: Site):
    async with client(site) as http:
        await http.get(await authorize(await start(http), "alice-sub"))
        page = (await http.get("/o/acme/sprints")).text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        out = await http.post("/logout", data={"csrf_token": csrf})
        assert out.status_code == 303
        location = out.headers["location"]
        assert location.startswith(site.provider.issuer + "/oauth2/end_session")
        query = parse_qs(urlsplit(location).query)
        assert query["post_logout_redirect_uri"] == [f"{site.app.url}/login?signed_out=1"]
        assert query["id_token_hint"][0].count(".") == 2
        assert not await signed_in(http)


async def test_production_has_no_development_sign_in(site: Site):
    async with client(site) as http:
        # A valid CSRF token, so that the answer is the guard's own and not the CSRF check's.
        await http.get(await authorize(await start(http), "alice-sub"))
        page = (await http.get("/o/acme/sprints")).text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        refused = await http.post(
            "/login/dev", data={"email": "bob@example.com", "csrf_token": csrf}
        )
        assert refused.status_code == 404
        assert "Development sign-in is off." in refused.text
        me = (await http.get("/api/v1/users/me")).json()
        assert me["email"] == "alice@example.com"  # still Alice: nobody else signed in


# Values a browser reads as another origin, once the query string is decoded.
HOSTILE_NEXT = [
    "/\\evil.example/phish",
    "/\t/evil.example",
    "//evil.example/phish",
    "/%5Cevil.example",
    "/\r\n/evil.example",
    "https://evil.example/",
    "javascript:alert(1)",
]


@pytest.mark.parametrize("hostile", HOSTILE_NEXT)
async def test_the_provider_callback_never_leads_to_another_site(site: Site, hostile: str):
    async with client(site) as http:
        response = await http.get("/login", params={"next": hostile})
        assert response.status_code == 302
        finished = await http.get(await authorize(response.headers["location"], "alice-sub"))
        assert finished.status_code == 303
        assert finished.headers["location"] == "/"


async def test_the_provider_callback_follows_a_legitimate_next(site: Site):
    wanted = "/o/acme/sprints?from=login"
    async with client(site) as http:
        response = await http.get("/login", params={"next": wanted})
        finished = await http.get(await authorize(response.headers["location"], "alice-sub"))
        assert finished.status_code == 303
        assert finished.headers["location"] == wanted


# --- people added before they ever signed in ----------------------------------------------


@pytest.fixture
async def demo_site(database_url: str, provider: Provider) -> AsyncIterator[Site]:
    """The demo data (people known only by email), served with OIDC configured."""
    db = Database(database_url)
    try:
        await load_demo(db, progress=lambda _m: None)
    finally:
        await db.close()
    port = free_port()
    with running_server(database_url, port=port, **app_env(provider, port)) as app:
        yield Site(app, provider, database_url)


async def demo_user_id(database_url: str, email: str) -> int:
    db = Database(database_url)
    try:
        async with db.read() as session:
            user = await find_user_by_email(session, email)
            assert user is not None
            return user.id
    finally:
        await db.close()


async def test_a_demo_person_signing_in_through_the_provider_becomes_that_person(
    demo_site: Site,
):
    alice_id = await demo_user_id(demo_site.database_url, "alice@example.com")
    async with client(demo_site) as http:
        finished = await http.get(await authorize(await start(http), "alice-sub"))
        assert finished.status_code == 303
        me = (await http.get("/api/v1/users/me")).json()
        home = await http.get("/")
    assert me["id"] == str(alice_id)
    assert [(o["slug"], o["role"]) for o in me["organizations"]] == [("acme", "owner")]
    assert home.status_code == 302 and "/o/acme/sprints/" in home.headers["location"]


async def test_someone_added_with_member_add_keeps_their_user_at_first_sign_in(
    demo_site: Site,
):
    # Dave (globex) exists only by email; bob is then added to globex as well.
    db = Database(demo_site.database_url)
    try:

        async def add(session: Any) -> None:
            await add_member(
                session,
                org=await find_org(session, "globex"),
                email="bob@example.com",
                role=Role.VIEWER,
            )

        await db.write(add)
    finally:
        await db.close()
    bob_id = await demo_user_id(demo_site.database_url, "bob@example.com")
    demo_site.provider.person("bob-sub", email="bob@example.com", name="Bob Baker")
    async with client(demo_site) as http:
        await http.get(await authorize(await start(http), "bob-sub"))
        me = (await http.get("/api/v1/users/me")).json()
    assert me["id"] == str(bob_id)
    assert sorted((o["slug"], o["role"]) for o in me["organizations"]) == [
        ("acme", "member"),
        ("globex", "viewer"),
    ]


async def test_someone_who_signed_in_through_the_provider_is_never_relinked_by_email(
    demo_site: Site,
):
    async with client(demo_site) as http:
        await http.get(await authorize(await start(http), "alice-sub"))
        alice = (await http.get("/api/v1/users/me")).json()
    # Another account at the provider with the same (verified) address.
    demo_site.provider.person("alice-second-sub", email="alice@example.com", name="Alice Two")
    async with client(demo_site) as http:
        await http.get(await authorize(await start(http), "alice-second-sub"))
        second = (await http.get("/api/v1/users/me")).json()
    assert second["id"] != alice["id"]
    assert second["organizations"] == []


@pytest.mark.console_errors(
    "the mock identity provider's page asks for a host Chromium cannot resolve here"
)
@pytest.mark.browser
async def test_signing_in_in_a_browser(site: Site, browser: Browser):
    page = await browser.new_page()
    await page.goto(f"{site.app.url}/")
    await expect(page).to_have_url(
        re.compile(re.escape(site.provider.issuer) + r"/oauth2/authorize")
    )
    await page.fill("input[name=sub][type=text]", "alice-sub")
    await page.click("button[type=submit]:has-text('Authorize')")
    await expect(page).to_have_url(f"{site.app.url}/o/acme/sprints")
    await expect(page.locator("body")).to_have_attribute("data-user-id", re.compile(r"\d+"))
    await expect(page.locator(".who-name")).to_contain_text("Alice Archer")


# The ID token checks on their own, with tokens signed here by a key we control.

KEY = RSAKey.generate_key(2048, parameters={"kid": "test-key"})
OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": "test-key"})
ISSUER = "https://id.example"


def token(key: RSAKey = KEY, **claims: object) -> str:
    now = int(time.time())
    body = {
        "iss": ISSUER,
        "aud": CLIENT_ID,
        "sub": "s1",
        "exp": now + 300,
        "iat": now,
        "nonce": "n1",
        "email": "a@example.com",
        "email_verified": True,
    } | claims
    return jwt.encode({"alg": "RS256", "kid": "test-key"}, body, key)


@pytest.fixture
def verifier() -> OIDCClient:
    return OIDCClient(Settings.from_env({"OIDC_ISSUER": ISSUER, "OIDC_CLIENT_ID": CLIENT_ID}))


def test_a_good_token_passes(verifier: OIDCClient):
    claims = verifier.verify(token(), KeySet([KEY]), nonce="n1")
    assert verifier.identity(claims, "t").email == "a@example.com"


@pytest.mark.parametrize(
    ("case", "id_token"),
    [
        ("another audience", token(aud="someone-else")),
        ("another issuer", token(iss="https://evil.example")),
        ("expired", token(exp=int(time.time()) - 600)),
        ("another nonce", token(nonce="n2")),
        ("no subject", token(sub=None)),
        ("signed by another key", token(OTHER_KEY)),
        ("not a token", "not.a.token"),
    ],
)
def test_a_bad_token_is_refused(verifier: OIDCClient, case: str, id_token: str):
    with pytest.raises(SignInRefused):
        verifier.verify(id_token, KeySet([KEY]), nonce="n1")


def test_an_unsigned_token_is_refused(verifier: OIDCClient):
    # {"alg": "none"} . {claims} . (no signature): never accepted.
    unsigned = "eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL2lkLmV4YW1wbGUifQ."
    with pytest.raises(SignInRefused):
        verifier.verify(unsigned, KeySet([KEY]), nonce="n1")
