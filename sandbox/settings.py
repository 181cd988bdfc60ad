"""Start-up settings of the sandbox, read from `TSPROV_SANDBOX_*`."""

from typing import Annotated, Literal

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from sandbox.identifiers import new_secret, new_stable_id

GrantMode = Literal["once", "reusable"]
ONCE_SCOPE = "auth_keys:create:once"
REUSABLE_SCOPE = "auth_keys:create"
TOKEN_RESPONSE_FIELDS = frozenset(
    {"access_token", "token_type", "expires_in", "scope", "refresh_token", "id_token"}
)
CREDENTIAL_FIELDS = (
    "app_client_id",
    "app_client_secret",
    "observer_client_id",
    "observer_client_secret",
    "admin_token",
)


def scope_for_grant_mode(mode: GrantMode) -> str:
    """Return the app scope that yields grants of `mode`."""
    return ONCE_SCOPE if mode == "once" else REUSABLE_SCOPE


def _split_comma_list(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _generated_secret(prefix: str) -> SecretStr:
    return SecretStr(new_secret(prefix))


class SandboxSettings(BaseSettings):
    """Everything the sandbox reads at start; switches among them can change at run time."""

    model_config = SettingsConfigDict(env_prefix="TSPROV_SANDBOX_", extra="ignore")

    app_client_id: str = Field(default_factory=lambda: new_stable_id("k"))
    app_client_secret: SecretStr = Field(default_factory=lambda: _generated_secret("tskey-app-"))
    app_name: str = "tsprov"
    app_redirect_uris: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: [
            "http://127.0.0.1:8000/callback",
            "http://localhost:8000/callback",
        ]
    )
    app_scopes: Annotated[list[str], NoDecode] = Field(default_factory=list)
    observer_client_id: str = Field(default_factory=lambda: new_stable_id("k"))
    observer_client_secret: SecretStr = Field(
        default_factory=lambda: _generated_secret("tskey-client-")
    )
    admin_token: SecretStr = Field(default_factory=lambda: _generated_secret("tskey-api-"))
    users: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["alice@example.com", "bob@example.com", "carol@example.com"]
    )
    grant_mode: GrantMode = "once"
    access_token_ttl: int = Field(default=3600, ge=1)
    require_pkce: bool = False
    send_iss: bool = False
    auto_approve: str = ""
    identity_field: str = ""
    device_approval: bool = False
    tailnet: str = "example.com"

    _scopes_follow_grant_mode: bool = PrivateAttr(default=False)

    @field_validator("app_redirect_uris", "app_scopes", "users", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return _split_comma_list(value)

    @field_validator("users")
    @classmethod
    def _users_present_and_unique(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one user is needed; the first is the tailnet admin")
        if len(set(value)) != len(value):
            raise ValueError("user login names must be unique")
        return value

    @field_validator("identity_field")
    @classmethod
    def _identity_field_is_extra(cls, value: str) -> str:
        if value in TOKEN_RESPONSE_FIELDS:
            raise ValueError(f"{value!r} is a standard token response field")
        return value

    @model_validator(mode="after")
    def _complete(self) -> "SandboxSettings":
        if self.auto_approve and self.auto_approve not in self.users:
            raise ValueError("auto_approve must name one of the users")
        if not self.app_scopes:
            self.app_scopes = [scope_for_grant_mode(self.grant_mode)]
            self._scopes_follow_grant_mode = True
        return self

    @property
    def scopes_follow_grant_mode(self) -> bool:
        """True when app_scopes was not given, so it tracks the grant_mode switch."""
        return self._scopes_follow_grant_mode

    def generated_credentials(self) -> dict[str, str]:
        """Return the credentials that were generated rather than given, by field name."""
        generated: dict[str, str] = {}
        for name in CREDENTIAL_FIELDS:
            if name in self.model_fields_set:
                continue
            value = getattr(self, name)
            generated[name] = value.get_secret_value() if isinstance(value, SecretStr) else value
        return generated
