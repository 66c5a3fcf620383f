"""A real OpenID Connect provider on loopback for the sign-in tests (oidc-provider-mock).

It serves discovery, JWKS, the authorization form, the token endpoint and RP-initiated
logout over HTTP from a thread; tests set each person's claims with `PUT /users/<sub>`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
from oidc_provider_mock import run_server_in_thread

# Both the provider and Authlib's client refuse plain HTTP unless told it is a test.
os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")


@dataclass
class Provider:
    issuer: str

    def person(self, sub: str, *, email: str, name: str, verified: bool = True) -> None:
        response = httpx.put(
            f"{self.issuer}/users/{sub}",
            json={"email": email, "email_verified": verified, "name": name},
        )
        response.raise_for_status()


@contextlib.contextmanager
def running_provider(*, token_max_age: dt.timedelta = dt.timedelta(hours=1)) -> Iterator[Provider]:
    with run_server_in_thread(require_nonce=True, access_token_max_age=token_max_age) as server:
        yield Provider(f"http://localhost:{server.server_port}")
