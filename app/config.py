"""Settings: defaults, overridden by the environment, checked before the app serves."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///instance/sprintboard.db"


class ConfigError(Exception):
    """A setting is missing or unsafe; the message is one line for the operator."""


class Environment(BaseSettings):
    """The environment variables the app reads (the README's "Configuration"), each
    with its default; an empty variable counts as unset."""

    # Names as the README gives them (`port=…` is not `PORT=…`).
    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore", case_sensitive=True)

    env: str = Field("production", validation_alias="SPRINTBOARD_ENV")
    database_url: str = Field(DEFAULT_DATABASE_URL, validation_alias="DATABASE_URL")
    redis_url: str | None = Field(None, validation_alias="REDIS_URL")
    secret_key: str | None = Field(None, validation_alias="SECRET_KEY")
    oidc_issuer: str | None = Field(None, validation_alias="OIDC_ISSUER")
    oidc_client_id: str | None = Field(None, validation_alias="OIDC_CLIENT_ID")
    oidc_client_secret: str | None = Field(None, validation_alias="OIDC_CLIENT_SECRET")
    base_url: str = Field("http://127.0.0.1:8000", validation_alias="BASE_URL")
    port: int = Field(8000, validation_alias="PORT")
    max_streams_per_user: int = Field(16, validation_alias="MAX_STREAMS_PER_USER")
    replay_window: int = Field(1000, validation_alias="SPRINTBOARD_REPLAY_WINDOW")
    heartbeat_seconds: float = Field(15.0, validation_alias="SPRINTBOARD_HEARTBEAT_SECONDS")
    # Hostile or broken clients: a request's headers must arrive within `headers_seconds`
    # and its body within `body_seconds`; a connection whose sent data stays
    # unacknowledged, or unsent because its client stopped reading, is dropped after
    # `stall_seconds` (a stream's client resumes from its cursor).
    headers_seconds: float = Field(10.0, validation_alias="SPRINTBOARD_HEADERS_SECONDS")
    body_seconds: float = Field(30.0, validation_alias="SPRINTBOARD_BODY_SECONDS")
    stall_seconds: float = Field(30.0, validation_alias="SPRINTBOARD_STALL_SECONDS")
    # Behind a reverse proxy: the proxies whose X-Forwarded-* headers (and X-Request-Id)
    # are believed, as addresses or networks, comma-separated, or `*`. None by default.
    forwarded_allow_ips: str = Field("", validation_alias="FORWARDED_ALLOW_IPS")
    log_format: str = Field("text", validation_alias="LOG_FORMAT")  # or "json"
    # GET /metrics: with a token, only for `Authorization: Bearer <token>`; without one,
    # only for clients on this machine (loopback).
    metrics_token: str | None = Field(None, validation_alias="METRICS_TOKEN")

    @field_validator("base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("log_format")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()

    @classmethod
    def read(cls, environ: Mapping[str, str] | None = None) -> Environment:
        """From the process's environment, or only from `environ` when given."""
        try:
            if environ is None:
                return cls()
            given: dict[str, Any] = {name: value for name, value in environ.items() if value}
            return _Given(**given)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ConfigError(f"{where}: {first['msg']} (got {first.get('input')!r})") from None


class _Given(Environment):
    """The same variables, read from a mapping alone (tests, and `from_env(environ)`)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


@dataclass
class Settings:
    """Everything the app reads from its environment, in one place (the defaults are
    `Environment`'s), and what tests set besides."""

    env: str
    database_url: str
    redis_url: str | None
    secret_key: str | None
    oidc_issuer: str | None
    oidc_client_id: str | None
    oidc_client_secret: str | None
    base_url: str
    port: int
    max_streams_per_user: int
    replay_window: int
    heartbeat_seconds: float
    headers_seconds: float
    body_seconds: float
    stall_seconds: float
    forwarded_allow_ips: str
    log_format: str
    metrics_token: str | None
    testing: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from environment variables (the README's "Configuration");
        a value that cannot be read is a ConfigError naming it."""
        return cls(**Environment.read(environ).model_dump())

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
        if self.testing:
            if not self.secret_key:
                self.secret_key = secrets.token_urlsafe(32)  # a fresh key per test app
            return self
        if self.is_development:
            if not self.secret_key:
                # Kept under instance/, so a restart of `make run` keeps people signed in.
                self.secret_key = development_secret_key()
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


DEV_SECRET_KEY_FILE = Path("instance") / "dev-secret-key"


def development_secret_key(path: Path = DEV_SECRET_KEY_FILE) -> str:
    """The development server's secret key: made once (readable by this user only) and
    read on every later start, by every worker alike. Never used outside development."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    try:
        # Exclusive: of two workers starting at once, one writes and both read it.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as file:
        file.write(key + "\n")
    return key
