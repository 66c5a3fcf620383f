"""OpenID Connect sign-in with Authlib: discovery, code flow with PKCE, ID token checks.

Authlib has no Quart integration, so this uses its async httpx client and its OIDC
claims classes. State, nonce and PKCE are kept in the signed session cookie, one entry
per pending sign-in (so two tabs can sign in at once), and each is used once.
"""

from __future__ import annotations

import secrets
import time
import warnings
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from app.config import Settings

# What providers sign ID tokens with; "none" and symmetric algorithms are never accepted.
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]

SCOPE = "openid email profile"
PENDING_LIMIT = 5
PENDING_SECONDS = 600
CACHE_SECONDS = 3600


class SignInRefused(Exception):
    """The provider's answer cannot be trusted or used; `message` says why, for a person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Identity:
    issuer: str
    subject: str
    email: str
    name: str
    id_token: str


class OIDCClient:
    """One configured provider: where it is, its keys, and the flow against it."""

    def __init__(self, settings: Settings) -> None:
        assert settings.oidc_issuer and settings.oidc_client_id
        self.issuer = settings.oidc_issuer.rstrip("/")
        self.client_id = settings.oidc_client_id
        self.client_secret = settings.oidc_client_secret or ""
        self.redirect_uri = f"{settings.base_url}/auth/callback"
        self._metadata: tuple[float, dict[str, Any]] | None = None
        self._keys: tuple[float, Any] | None = None

    def _client(self) -> Any:
        with warnings.catch_warnings():
            # Authlib announces a future move of its httpx integration; nothing to do yet.
            warnings.simplefilter("ignore", DeprecationWarning)
            from authlib.integrations.httpx_client import AsyncOAuth2Client
        return AsyncOAuth2Client(
            client_id=self.client_id,
            client_secret=self.client_secret,
            scope=SCOPE,
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",
            timeout=10,
        )

    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (cached for an hour)."""
        if self._metadata and time.monotonic() - self._metadata[0] < CACHE_SECONDS:
            return self._metadata[1]
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(f"{self.issuer}/.well-known/openid-configuration")
        response.raise_for_status()
        document = response.json()
        if str(document.get("issuer", "")).rstrip("/") != self.issuer:
            raise SignInRefused("The identity provider's discovery document names another issuer.")
        self._metadata = (time.monotonic(), document)
        return document

    async def keys(self, *, refresh: bool = False) -> Any:
        if not refresh and self._keys and time.monotonic() - self._keys[0] < CACHE_SECONDS:
            return self._keys[1]
        metadata = await self.metadata()
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(metadata["jwks_uri"])
        response.raise_for_status()
        key_set = KeySet.import_key_set(response.json())
        self._keys = (time.monotonic(), key_set)
        return key_set

    async def start(self) -> tuple[str, dict[str, str]]:
        """The provider URL to send the browser to, and what to remember until it returns."""
        metadata = await self.metadata()
        pending = {
            "state": secrets.token_urlsafe(24),
            "nonce": secrets.token_urlsafe(24),
            "verifier": secrets.token_urlsafe(48),
        }
        async with self._client() as client:
            url, _state = client.create_authorization_url(
                metadata["authorization_endpoint"],
                state=pending["state"],
                nonce=pending["nonce"],
                code_verifier=pending["verifier"],
            )
        return url, pending

    async def finish(self, code: str, pending: dict[str, str]) -> Identity:
        """Exchange the code (with the PKCE verifier) and check the ID token thoroughly."""
        metadata = await self.metadata()
        async with self._client() as client:
            try:
                token = await client.fetch_token(
                    metadata["token_endpoint"],
                    code=code,
                    code_verifier=pending["verifier"],
                    grant_type="authorization_code",
                )
            except Exception as error:  # the provider refused the code (used, foreign, …)
                raise SignInRefused(
                    "The identity provider did not accept this sign-in. Please try again."
                ) from error
        id_token = token.get("id_token")
        if not id_token:
            raise SignInRefused("The identity provider sent no ID token.")
        try:
            claims = self.verify(id_token, await self.keys(), nonce=pending["nonce"])
        except SignInRefused:
            # A key rotation at the provider: fetch its keys once more, then decide.
            claims = self.verify(id_token, await self.keys(refresh=True), nonce=pending["nonce"])
        return self.identity(claims, id_token)

    def verify(self, id_token: str, key_set: Any, *, nonce: str) -> dict[str, Any]:
        """Signature, issuer, audience, expiry and nonce, or SignInRefused."""
        try:
            token = jwt.decode(id_token, key_set, algorithms=ALGORITHMS)
            jwt.JWTClaimsRegistry(
                leeway=60,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.client_id},
                exp={"essential": True},
                sub={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(token.claims)
        except JoseError as error:
            raise SignInRefused(
                f"The identity provider's answer did not check out ({error.error})."
            ) from error
        except (ValueError, TypeError) as error:
            raise SignInRefused("The identity provider's answer was not a valid token.") from error
        return dict(token.claims)

    def identity(self, claims: dict[str, Any], id_token: str) -> Identity:
        email = str(claims.get("email") or "")
        if not email:
            raise SignInRefused("Your identity provider did not share your email address.")
        if claims.get("email_verified") is not True:
            raise SignInRefused(
                f"Your identity provider has not verified {email}; verify it there first."
            )
        name = str(claims.get("name") or claims.get("preferred_username") or "")
        return Identity(self.issuer, str(claims["sub"]), email, name, id_token)

    async def logout_url(self, id_token: str | None, after: str) -> str | None:
        """RP-initiated logout at the provider, when it offers an end-session endpoint."""
        try:
            endpoint = (await self.metadata()).get("end_session_endpoint")
        except Exception:  # no provider reachable: sign out here only
            return None
        if not endpoint:
            return None
        from urllib.parse import urlencode

        params = {"post_logout_redirect_uri": after, "client_id": self.client_id}
        if id_token:
            params["id_token_hint"] = id_token
        return f"{endpoint}?{urlencode(params)}"


def remember_pending(store: dict[str, Any], pending: dict[str, str], next_url: str) -> None:
    """Keep a pending sign-in (a few at most, for a few minutes) by its state."""
    now = int(time.time())
    fresh = {k: v for k, v in store.items() if now - int(v.get("at", 0)) < PENDING_SECONDS}
    while len(fresh) >= PENDING_LIMIT:
        fresh.pop(next(iter(fresh)))
    fresh[pending["state"]] = {**pending, "next": next_url, "at": now}
    store.clear()
    store.update(fresh)
