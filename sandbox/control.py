"""The control API's bodies and the switch changes they make."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sandbox.errors import ApiError
from sandbox.route_names import check_route_selector
from sandbox.settings import (
    TOKEN_RESPONSE_FIELDS,
    AppNodeAttributes,
    ConsentKeyLog,
    ConsentKeyUserId,
    GrantMode,
    ObserverUserKeyAccess,
    TokenErrorShape,
)
from sandbox.state import SandboxState
from sandbox.switches import Latency

ForcedOAuthError = Literal["access_denied", "invalid_grant", "invalid_client"]


class LatencyBody(BaseModel):
    """The latency switch: every matching answer waits uniformly in [min, max] seconds."""

    model_config = ConfigDict(extra="forbid")

    min_seconds: float = Field(ge=0, le=600)
    max_seconds: float = Field(ge=0, le=600)
    routes: list[str] = Field(
        default_factory=list,
        description="route names or path prefixes; empty: every Tailscale-facing route but join",
    )

    @field_validator("routes")
    @classmethod
    def _known_routes(cls, values: list[str]) -> list[str]:
        return [check_route_selector(value) for value in values]

    @model_validator(mode="after")
    def _ordered(self) -> "LatencyBody":
        if self.min_seconds > self.max_seconds:
            raise ValueError("min_seconds must not exceed max_seconds")
        return self


class SwitchesBody(BaseModel):
    """Every switch; PATCH changes only the members it sends."""

    model_config = ConfigDict(extra="forbid")

    require_pkce: bool = False
    grant_mode: GrantMode = "once"
    access_token_ttl: int = Field(default=3600, ge=1)
    send_iss: bool = False
    auto_approve: str | None = Field(default=None, description="login name; null or '' is off")
    identity_field: str | None = Field(
        default=None, description="extra token-response field carrying the login; null is off"
    )
    forced_oauth_error: ForcedOAuthError | None = Field(
        default=None,
        description="access_denied fails the authorize redirect; invalid_grant and "
        "invalid_client fail the token endpoint; null is off",
    )
    device_approval: bool = Field(default=False, description="devicesApprovalOn")
    device_quota_exceeded: bool = Field(
        default=False, description="POST /device/{id}/authorized answers 402"
    )
    token_error_shape: TokenErrorShape = Field(
        default="rfc6749", description="code exchange and refresh refusals: RFC 6749 or message"
    )
    consent_key_user_id: ConsentKeyUserId = Field(
        default="present", description="userId of keys made under an OAuth app's consent"
    )
    consent_key_log: ConsentKeyLog = Field(
        default="user", description="API_KEY.CREATE of such keys: the user, the app, or absent"
    )
    observer_user_key_access: ObserverUserKeyAccess = Field(
        default="read", description="an OAuth client reading a user's key: 200, 404 or 403"
    )
    observer_scopes: list[str] = Field(
        default_factory=lambda: ["devices:core", "logs:configuration:read"]
    )
    oauth_app_events: bool = Field(default=False, description="emit the OAUTH_APP.* events")
    node_create_key_id: bool = Field(
        default=True, description="NODE.CREATE's `new` names the key the device enrolled with"
    )
    app_node_attributes: AppNodeAttributes = Field(
        default="at_enrolment", description="when an app's allowedNodeAttributes are set"
    )
    latency: LatencyBody | None = None
    rotate_refresh_tokens: bool = Field(
        default=True,
        description="false: a refresh answers a new access token only, and the refresh token "
        "stays valid",
    )


def apply_switches(state: SandboxState, patch: SwitchesBody) -> None:
    """Change the switches the patch names; refuse unknown users and standard field names."""
    with state.lock:
        switches = state.switches
        for name in patch.model_fields_set:
            value = getattr(patch, name)
            if name in ("auto_approve", "identity_field") and value == "":
                value = None
            if name == "auto_approve" and value is not None and not state.user_by_login(value):
                raise ApiError(400, f"auto_approve: {value!r} is not a user of the tailnet")
            if name == "identity_field" and value in TOKEN_RESPONSE_FIELDS:
                raise ApiError(400, f"identity_field: {value!r} is a standard field")
            if name == "grant_mode":
                state.set_grant_mode(value)
            elif name == "observer_scopes":
                _set_observer_scopes(state, value)
            elif name == "latency":
                switches.latency = Latency(**value.model_dump()) if value else None
            else:
                setattr(switches, name, value)


def _set_observer_scopes(state: SandboxState, scopes: list[str]) -> None:
    try:
        state.set_observer_scopes(scopes)
    except ValueError as exc:
        raise ApiError(400, f"observer_scopes: {exc}") from None


def _header_safe(value: str) -> bool:
    return value.isprintable() and all(ord(character) < 256 for character in value)


class FaultRuleBody(BaseModel):
    """A fault rule: which requests it hits and how they misbehave."""

    model_config = ConfigDict(extra="forbid")

    route: str = Field(description="a route name, or a path (prefix) starting with '/'")
    method: str | None = None
    grant_type: str | None = Field(default=None, description="token requests only")
    latency_seconds: float = Field(default=0.0, ge=0, le=600)
    fail_times: int | None = Field(default=None, ge=1, description="fire N times; null: always")
    status: int | None = Field(default=None, ge=100, le=599)
    retry_after: str | None = Field(default=None, description="raw Retry-After header value")
    lost_response: bool = Field(default=False, description="do the work, drop the connection")
    body: str | None = Field(default=None, description="raw body that replaces the answer's")
    drip_seconds: float = Field(default=0.0, ge=0, le=600)

    @field_validator("route")
    @classmethod
    def _route_known(cls, value: str) -> str:
        return check_route_selector(value)

    @field_validator("method")
    @classmethod
    def _upper_method(cls, value: str | None) -> str | None:
        return value.upper() if value is not None else None

    @field_validator("retry_after")
    @classmethod
    def _retry_after_is_a_header(cls, value: str | None) -> str | None:
        if value is not None and not _header_safe(value):
            raise ValueError("retry_after must be printable Latin-1 without line breaks")
        return value

    @model_validator(mode="after")
    def _does_something(self) -> "FaultRuleBody":
        effects = (self.latency_seconds, self.status, self.lost_response, self.body)
        if not any(effect for effect in effects) and not self.drip_seconds:
            raise ValueError(
                "a fault rule needs latency, a status, a lost response, a body or drip"
            )
        if self.status is not None and self.lost_response:
            raise ValueError("status and lost_response exclude each other")
        return self


class ClockAdvanceBody(BaseModel):
    """Body of `POST /sandbox/clock`."""

    model_config = ConfigDict(extra="forbid")

    advance_seconds: float = Field(gt=0)


class ConnectionBody(BaseModel):
    """Body of `POST /sandbox/devices/{id}/connection`."""

    model_config = ConfigDict(extra="forbid")

    connected: bool
