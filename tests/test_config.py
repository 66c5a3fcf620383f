"""Settings from the environment, and the safety rules around them."""

from __future__ import annotations

import re
import socket
import stat
from pathlib import Path

import httpx
import pytest

from app import create_app
from app.config import ConfigError, Settings
from app.db import Database
from app.demo import load_demo
from app.server import hypercorn_config
from tests.conftest import CSRF, app_config
from tests.server import running_server


def test_defaults_match_the_contract():
    settings = Settings.from_env({})
    assert settings.database_url == "sqlite+aiosqlite:///instance/sprintboard.db"
    assert settings.base_url == "http://127.0.0.1:8000"
    assert settings.port == 8000 and settings.max_streams_per_user == 16
    assert settings.env == "production" and settings.redis_url is None


def test_production_names_what_is_missing():
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"SECRET_KEY": "x"}).checked()
    assert "OIDC_ISSUER" in str(refused.value) and "SECRET_KEY" not in str(refused.value)


def test_development_keeps_its_secret_under_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Made once, readable by its user only, and the same at every start after; a test
    app gets a fresh one and writes nothing; production never reads the file."""
    monkeypatch.chdir(tmp_path)
    one = Settings.from_env({"SPRINTBOARD_ENV": "development"}).checked()
    two = Settings.from_env({"SPRINTBOARD_ENV": "development"}).checked()
    kept = tmp_path / "instance" / "dev-secret-key"
    assert one.secret_key and one.secret_key == two.secret_key == kept.read_text().strip()
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    given = {"SPRINTBOARD_ENV": "development", "SECRET_KEY": "given"}
    assert Settings.from_env(given).checked().secret_key == "given"
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        Settings.from_env({}).checked()  # production: the file is never read


async def test_restarting_the_development_server_keeps_people_signed_in(
    database_url: str, tmp_path: Path
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("the development server's own folder is what matters here")
    db = Database(database_url)
    try:
        await load_demo(db, progress=lambda _m: None)
    finally:
        await db.close()
    async with httpx.AsyncClient(timeout=10) as http:
        with running_server(database_url, cwd=str(tmp_path), SECRET_KEY="") as server:
            http.base_url = httpx.URL(server.url)
            page = (await http.get("/login")).text
            token = re.search(r'name="csrf_token" value="([^"]+)"', page)
            assert token
            signed = await http.post(
                "/login/dev", data={"csrf_token": token.group(1), "email": "bob@example.com"}
            )
            assert signed.status_code == 303
            port = server.port
        with running_server(database_url, port=port, cwd=str(tmp_path), SECRET_KEY=""):
            me = await http.get("/api/v1/users/me", headers={"Accept": "application/json"})
    assert me.status_code == 200 and me.json()["email"] == "bob@example.com"


@pytest.mark.parametrize(
    ("env", "enabled"),
    [
        ({"SPRINTBOARD_ENV": "development", "SECRET_KEY": "s"}, True),
        (
            {
                "SPRINTBOARD_ENV": "development",
                "SECRET_KEY": "s",
                "OIDC_ISSUER": "https://id.example",
                "OIDC_CLIENT_ID": "sb",
            },
            False,
        ),
        (
            {
                "SPRINTBOARD_ENV": "production",
                "SECRET_KEY": "s",
                "OIDC_ISSUER": "https://id.example",
                "OIDC_CLIENT_ID": "sb",
            },
            False,
        ),
    ],
)
def test_dev_sign_in_only_in_development_without_oidc(env: dict[str, str], enabled: bool):
    assert Settings.from_env(env).checked().dev_login_enabled is enabled


async def test_dev_sign_in_route_is_gone_outside_development(database_url: str):
    app = create_app(
        app_config(
            database_url, ENV="production", OIDC_ISSUER="https://id.example", OIDC_CLIENT_ID="sb"
        )
    )
    async with app.test_app():
        client = app.test_client()
        # A valid CSRF token, so that the answer is the guard's own and not the CSRF check's.
        async with client.session_transaction() as session:
            session["csrf"] = CSRF
        response = await client.post(
            "/login/dev", form={"email": "alice@example.com", "csrf_token": CSRF}
        )
        assert response.status_code == 404
        assert "Development sign-in is off." in await response.get_data(as_text=True)


def test_https_base_url_makes_cookies_secure_and_host_prefixed(database_url: str):
    app = create_app(app_config(database_url, BASE_URL="https://board.example"))
    assert app.config["SESSION_COOKIE_NAME"].startswith("__Host-")
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


async def test_health_reports_database_and_broker(app, client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert await response.get_json() == {"status": "ok", "database": "ok", "broker": "memory"}


def test_hostile_client_bounds_default_to_the_contract() -> None:
    settings = Settings.from_env({})
    assert (settings.headers_seconds, settings.body_seconds, settings.stall_seconds) == (
        10,
        30,
        30,
    )


def test_listening_sockets_give_up_on_stalled_peers() -> None:
    settings = Settings.from_env({"SPRINTBOARD_STALL_SECONDS": "7"})
    config = hypercorn_config("127.0.0.1", 0, 1, settings)
    assert config.keep_alive_timeout == settings.headers_seconds
    sockets = config.create_sockets()
    try:
        (listening,) = sockets.insecure_sockets
        assert listening.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 7000
        assert listening.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert listening.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 15
    finally:
        for sock in sockets.insecure_sockets:
            sock.close()


def test_an_unreadable_value_is_a_config_error_naming_it():
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"PORT": "eighty"})
    assert "PORT" in str(refused.value) and "eighty" in str(refused.value)


def test_an_empty_variable_counts_as_unset_and_values_are_tidied():
    settings = Settings.from_env(
        {"PORT": "", "BASE_URL": "https://board.example/", "LOG_FORMAT": "JSON"}
    )
    assert settings.port == 8000
    assert settings.base_url == "https://board.example"
    assert settings.log_format == "json"


def test_the_process_environment_is_read_when_no_mapping_is_given(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("MAX_STREAMS_PER_USER", "3")
    monkeypatch.setenv("REDIS_URL", "")
    settings = Settings.from_env()
    assert settings.max_streams_per_user == 3 and settings.redis_url is None
