"""Start-up settings: environment parsing, defaults, generated credentials, the banner."""

import pytest
from pydantic import SecretStr, ValidationError

from sandbox import server
from sandbox.settings import SandboxSettings


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


def test_app_scopes_follow_the_grant_mode_unless_given() -> None:
    reusable = SandboxSettings(grant_mode="reusable")
    assert reusable.app_scopes == ["auth_keys:create"]
    assert reusable.scopes_follow_grant_mode
    given = SandboxSettings(grant_mode="reusable", app_scopes="auth_keys:create:once")
    assert given.app_scopes == ["auth_keys:create:once"]
    assert not given.scopes_follow_grant_mode


def test_credentials_are_generated_when_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TSPROV_SANDBOX_APP_CLIENT_ID", "kFixedCNTRL")
    first, second = SandboxSettings(), SandboxSettings()
    assert first.app_client_id == "kFixedCNTRL"
    assert first.app_client_secret.get_secret_value().startswith("tskey-app-")
    assert first.observer_client_secret.get_secret_value().startswith("tskey-client-")
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
