"""Start-up settings of the sandbox, read from `TSPROV_SANDBOX_*`."""

import re
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from sandbox.identifiers import embedded_secret, new_stable_id
from sandbox.route_names import check_route_selector
from sandbox.scopes import scopes_allow

GrantMode = Literal["once", "reusable"]
TokenErrorShape = Literal["rfc6749", "message"]
ConsentKeyUserId = Literal["present", "empty"]
ObserverUserKeyAccess = Literal["read", "not_found", "forbidden"]
ConsentKeyLog = Literal["user", "app", "absent"]
AppNodeAttributes = Literal["at_enrolment", "never"]
ONCE_SCOPE = "auth_keys:create:once"
REUSABLE_SCOPE = "auth_keys:create"
# Tailscale refuses an OAuth client holding these without tags.
TAG_REQUIRING_SCOPES = ("devices:core", "auth_keys")
TAG_PATTERN = re.compile(r"^tag:[A-Za-z][A-Za-z0-9-]*$")
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
COMMA_LISTS = (
    "app_redirect_uris",
    "app_scopes",
    "users",
    "observer_scopes",
    "observer_tags",
    "latency_routes",
)


def scope_for_grant_mode(mode: GrantMode) -> str:
    """Return the app scope that yields grants of `mode`."""
    return ONCE_SCOPE if mode == "once" else REUSABLE_SCOPE


def needs_tags(scopes: list[str]) -> bool:
    """True when an OAuth client holding `scopes` must carry tags."""
    return any(scopes_allow(scopes, scope) for scope in TAG_REQUIRING_SCOPES)


def parse_latency(text: str) -> tuple[float, float]:
    """Parse `"3"` or `"2-4"` (seconds) into a (minimum, maximum) pair."""
    low, _, high = text.partition("-")
    minimum = float(low)
    maximum = float(high) if high else minimum
    if not 0 <= minimum <= maximum <= 600:
        raise ValueError("latency must be 0 <= min <= max <= 600 seconds")
    return minimum, maximum


def _split_comma_list(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _secret_naming(prefix: str, id_field: str) -> Any:
    # Tailscale secrets embed the id of what they belong to: tskey-<kind>-<id>-<secret>.
    return lambda data: SecretStr(embedded_secret(prefix, data.get(id_field) or new_stable_id("k")))


def _admin_token() -> SecretStr:
    return SecretStr(embedded_secret("tskey-api-", new_stable_id("k")))


class SandboxSettings(BaseSettings):
    """Everything the sandbox reads at start; switches among them can change at run time."""

    model_config = SettingsConfigDict(env_prefix="TSPROV_SANDBOX_", extra="ignore")

    app_client_id: str = Field(default_factory=lambda: new_stable_id("a"))
    app_client_secret: SecretStr = Field(
        default_factory=_secret_naming("tskey-app-", "app_client_id")
    )
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
        default_factory=_secret_naming("tskey-client-", "observer_client_id")
    )
    observer_scopes: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["devices:core", "logs:configuration:read"]
    )
    observer_tags: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["tag:tsprov-observer"]
    )
    admin_token: SecretStr = Field(default_factory=_admin_token)
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
    device_quota_exceeded: bool = False
    token_error_shape: TokenErrorShape = "rfc6749"  # noqa: S105 (a shape's name, not a secret)
    consent_key_user_id: ConsentKeyUserId = "present"
    consent_key_log: ConsentKeyLog = "user"
    observer_user_key_access: ObserverUserKeyAccess = "read"
    oauth_app_events: bool = False
    node_create_key_id: bool = True
    app_node_attributes: AppNodeAttributes = "at_enrolment"
    latency_seconds: str = ""
    latency_routes: Annotated[list[str], NoDecode] = Field(default_factory=list)
    tailnet: str = "example.com"

    _scopes_follow_grant_mode: bool = PrivateAttr(default=False)

    @field_validator(*COMMA_LISTS, mode="before")
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

    @field_validator("observer_tags")
    @classmethod
    def _tags_well_formed(cls, value: list[str]) -> list[str]:
        bad = [tag for tag in value if not TAG_PATTERN.match(tag)]
        if bad:
            raise ValueError(f"observer tags {bad} are not of the form tag:name")
        return value

    @field_validator("latency_routes")
    @classmethod
    def _latency_routes_known(cls, value: list[str]) -> list[str]:
        return [check_route_selector(route) for route in value]

    @field_validator("latency_seconds")
    @classmethod
    def _latency_parses(cls, value: str) -> str:
        if value:
            parse_latency(value)
        return value

    @model_validator(mode="after")
    def _complete(self) -> "SandboxSettings":
        if self.auto_approve and self.auto_approve not in self.users:
            raise ValueError("auto_approve must name one of the users")
        if needs_tags(self.observer_scopes) and not self.observer_tags:
            raise ValueError("an OAuth client with devices:core or auth_keys must have tags")
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
