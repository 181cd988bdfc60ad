"""Start-up settings: environment parsing, defaults, generated credentials, the banner."""

import re

import pytest
from pydantic import SecretStr, ValidationError

from sandbox import server
from sandbox.settings import SandboxSettings
from sandbox.state import SandboxState
from sandbox.switches import Latency


def test_comma_separated_lists_and_booleans_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TSPROV_SANDBOX_USERS", "dana@corp.example, eve@corp.example")
    monkeypatch.setenv(
        "TSPROV_SANDBOX_APP_REDIRECT_URIS", "https://a.example/cb,https://b.example/cb"
    )
    monkeypatch.setenv("TSPROV_SANDBOX_REQUIRE_PKCE", "true")
    monkeypatch.setenv("TSPROV_SANDBOX_SEND_ISS", "false")
    monkeypatch.setenv("TSPROV_SANDBOX_GRANT_MODE", "reusable")
    monkeypatch.setenv("TSPROV_SANDBOX_ACCESS_TOKEN_TTL", "90")
    settings = SandboxSettings()
    assert settings.users == ["dana@corp.example", "eve@corp.example"]
    assert settings.app_redirect_uris == ["https://a.example/cb", "https://b.example/cb"]
    assert settings.require_pkce is True
    assert settings.send_iss is False
    assert settings.access_token_ttl == 90


def test_defaults() -> None:
    settings = SandboxSettings()
    assert settings.grant_mode == "once"
    assert settings.app_scopes == ["auth_keys:create:once"]
    assert settings.app_redirect_uris == [
        "http://127.0.0.1:8000/callback",
        "http://localhost:8000/callback",
    ]
    assert settings.users[0] == "alice@example.com"
    assert settings.access_token_ttl == 3600
    assert (settings.require_pkce, settings.send_iss) == (False, False)
    assert (settings.auto_approve, settings.identity_field) == ("", "")
    assert settings.observer_scopes == ["devices:core", "logs:configuration:read"]
    assert settings.observer_tags == ["tag:tsprov-observer"]
    assert (settings.token_error_shape, settings.oauth_app_events) == ("rfc6749", False)
    assert (settings.consent_key_user_id, settings.consent_key_log) == ("present", "user")
    assert settings.observer_user_key_access == "read"
    assert settings.app_node_attributes == "at_enrolment"
    assert (settings.device_approval, settings.device_quota_exceeded) == (False, False)
    assert (settings.latency_seconds, settings.latency_routes) == ("", [])


def test_switch_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {
        "TOKEN_ERROR_SHAPE": "message",
        "CONSENT_KEY_USER_ID": "empty",
        "CONSENT_KEY_LOG": "absent",
        "OBSERVER_USER_KEY_ACCESS": "forbidden",
        "OBSERVER_SCOPES": "devices:core, users:read, auth_keys:read",
        "OAUTH_APP_EVENTS": "true",
        "NODE_CREATE_KEY_ID": "false",
        "APP_NODE_ATTRIBUTES": "never",
        "DEVICE_QUOTA_EXCEEDED": "true",
        "LATENCY_SECONDS": "2-4",
        "LATENCY_ROUTES": "token,/api/v2/tailnet/",
    }
    for name, value in values.items():
        monkeypatch.setenv(f"TSPROV_SANDBOX_{name}", value)
    switches = SandboxState(SandboxSettings()).switches
    assert (switches.token_error_shape, switches.consent_key_user_id) == ("message", "empty")
    assert (switches.consent_key_log, switches.observer_user_key_access) == ("absent", "forbidden")
    assert switches.observer_scopes == ["devices:core", "users:read", "auth_keys:read"]
    assert (switches.oauth_app_events, switches.device_quota_exceeded) == (True, True)
    assert switches.app_node_attributes == "never"
    assert switches.node_create_key_id is False
    assert switches.latency == Latency(2.0, 4.0, ["token", "/api/v2/tailnet/"])


def test_app_scopes_follow_the_grant_mode_unless_given() -> None:
    reusable = SandboxSettings(grant_mode="reusable")
    assert reusable.app_scopes == ["auth_keys:create"]
    assert reusable.scopes_follow_grant_mode
    given = SandboxSettings(grant_mode="reusable", app_scopes="auth_keys:create:once")
    assert given.app_scopes == ["auth_keys:create:once"]
    assert not given.scopes_follow_grant_mode


def test_generated_ids_look_like_tailscales() -> None:
    settings = SandboxSettings()
    assert re.fullmatch(r"a[A-Za-z0-9]+CNTRL", settings.app_client_id)
    assert re.fullmatch(r"k[A-Za-z0-9]+CNTRL", settings.observer_client_id)
    secret = settings.app_client_secret.get_secret_value()
    assert secret.startswith(f"tskey-app-{settings.app_client_id}-")


def test_credentials_are_generated_when_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TSPROV_SANDBOX_APP_CLIENT_ID", "aFixedCNTRL")
    first, second = SandboxSettings(), SandboxSettings()
    assert first.app_client_id == "aFixedCNTRL"
    # Generated secrets embed the id of what they belong to, as Tailscale's do.
    assert first.app_client_secret.get_secret_value().startswith("tskey-app-aFixedCNTRL-")
    observer_secret = first.observer_client_secret.get_secret_value()
    assert observer_secret.startswith(f"tskey-client-{first.observer_client_id}-")
    assert re.fullmatch(r"tskey-api-k\w+CNTRL-\w+", first.admin_token.get_secret_value())

    assert first.admin_token != second.admin_token
    generated = first.generated_credentials()
    assert "app_client_id" not in generated
    assert set(generated) == {
        "app_client_secret",
        "observer_client_id",
        "observer_client_secret",
        "admin_token",
    }


@pytest.mark.parametrize(
    "values",
    [
        {"users": ""},
        {"users": "a@x.example,a@x.example"},
        {"auto_approve": "nobody@example.com"},
        {"identity_field": "access_token"},
        {"grant_mode": "sometimes"},
        {"access_token_ttl": 0},
        {"token_error_shape": "xml"},
        {"observer_tags": "ci"},
        {"observer_tags": "", "observer_scopes": "devices:core"},
        {"observer_tags": "", "observer_scopes": "all"},
        {"latency_seconds": "4-2"},
        {"latency_seconds": "soon"},
        {"latency_routes": "nowhere"},
    ],
)
def test_invalid_settings_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SandboxSettings(**values)  # type: ignore[arg-type]


def test_banner_shows_generated_secrets_only() -> None:
    settings = SandboxSettings(admin_token=SecretStr("tskey-api-given"))
    banner = server.describe(settings, "http://127.0.0.1:8081")
    assert settings.app_client_secret.get_secret_value() in banner
    assert settings.app_client_id in banner
    assert "tskey-api-given" not in banner


def test_run_sandbox_prints_then_serves(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    served: dict[str, object] = {}

    def fake_run(app: object, **options: object) -> None:
        served.update(options, app=app)

    monkeypatch.setattr("sandbox.server.uvicorn.run", fake_run)
    settings = SandboxSettings()
    server.run_sandbox("127.0.0.1", 8089, settings)
    assert settings.admin_token.get_secret_value() in capsys.readouterr().out
    assert (served["host"], served["port"]) == ("127.0.0.1", 8089)
    assert served["app"] is not None
