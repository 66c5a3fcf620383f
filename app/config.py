"""Settings: defaults, overridden by the environment, checked before the app serves."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///instance/sprintboard.db"


class ConfigError(Exception):
    """A setting is missing or unsafe; the message is one line for the operator."""


@dataclass
class Settings:
    """Everything the app reads from its environment, in one place."""

    env: str = "production"
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    secret_key: str | None = None
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    base_url: str = "http://127.0.0.1:8000"
    port: int = 8000
    max_streams_per_user: int = 16
    replay_window: int = 1000
    heartbeat_seconds: float = 15.0
    # Hostile or broken clients: a request's headers must arrive within `headers_seconds`
    # and its body within `body_seconds`; a connection whose sent data stays
    # unacknowledged, or unsent because its client stopped reading, is dropped after
    # `stall_seconds` (a stream's client resumes from its cursor).
    headers_seconds: float = 10.0
    body_seconds: float = 30.0
    stall_seconds: float = 30.0
    # Behind a reverse proxy: the proxies whose X-Forwarded-* headers (and X-Request-Id)
    # are believed, as addresses or networks, comma-separated, or `*`. None by default.
    forwarded_allow_ips: str = ""
    log_format: str = "text"  # or "json": one JSON object per line
    # GET /metrics: with a token, only for `Authorization: Bearer <token>`; without one,
    # only for clients on this machine (loopback).
    metrics_token: str | None = None
    testing: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from environment variables (the README's "Configuration")."""
        env = os.environ if environ is None else environ
        return cls(
            env=env.get("SPRINTBOARD_ENV", "production"),
            database_url=env.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            redis_url=env.get("REDIS_URL") or None,
            secret_key=env.get("SECRET_KEY") or None,
            oidc_issuer=env.get("OIDC_ISSUER") or None,
            oidc_client_id=env.get("OIDC_CLIENT_ID") or None,
            oidc_client_secret=env.get("OIDC_CLIENT_SECRET") or None,
            base_url=(env.get("BASE_URL") or "http://127.0.0.1:8000").rstrip("/"),
            port=int(env.get("PORT") or 8000),
            max_streams_per_user=int(env.get("MAX_STREAMS_PER_USER") or 16),
            replay_window=int(env.get("SPRINTBOARD_REPLAY_WINDOW") or 1000),
            heartbeat_seconds=float(env.get("SPRINTBOARD_HEARTBEAT_SECONDS") or 15),
            headers_seconds=float(env.get("SPRINTBOARD_HEADERS_SECONDS") or 10),
            body_seconds=float(env.get("SPRINTBOARD_BODY_SECONDS") or 30),
            stall_seconds=float(env.get("SPRINTBOARD_STALL_SECONDS") or 30),
            forwarded_allow_ips=env.get("FORWARDED_ALLOW_IPS") or "",
            log_format=(env.get("LOG_FORMAT") or "text").lower(),
            metrics_token=env.get("METRICS_TOKEN") or None,
        )

    def merged(self, overrides: Mapping[str, Any] | None) -> Settings:
        """Return a copy with the given fields replaced (tests pass overrides this way)."""
        if not overrides:
            return self
        known = {f.name for f in fields(self)}
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for key, value in overrides.items():
            name = key.lower()
            if name in known:
                values[name] = value
            else:
                values["extra"] = {**values["extra"], key: value}
        return Settings(**values)

    @property
    def is_development(self) -> bool:
        return self.env == "development"

    @property
    def oidc_configured(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id)

    @property
    def dev_login_enabled(self) -> bool:
        """Development sign-in: only in development and only when no OIDC is configured."""
        return self.is_development and not self.oidc_configured

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")

    def checked(self) -> Settings:
        """Refuse unsafe production settings; fill in a development secret."""
        from app.proxies import parse_networks

        if self.log_format not in ("text", "json"):
            raise ConfigError(f"LOG_FORMAT must be text or json, not {self.log_format!r}")
        try:
            parse_networks(self.forwarded_allow_ips)
        except ValueError as error:
            raise ConfigError(f"FORWARDED_ALLOW_IPS: {error}") from None
        if self.is_development or self.testing:
            if not self.secret_key:
                # A fresh key per start: development sessions end when the server restarts.
                self.secret_key = secrets.token_urlsafe(32)
            return self
        missing = [
            name
            for name, value in (
                ("SECRET_KEY", self.secret_key),
                ("OIDC_ISSUER", self.oidc_issuer),
                ("OIDC_CLIENT_ID", self.oidc_client_id),
            )
            if not value
        ]
        if missing:
            raise ConfigError(
                "refusing to start in production without "
                + ", ".join(missing)
                + " (set them, or SPRINTBOARD_ENV=development for local use)"
            )
        return self
