"""The switches: behaviours that differ between plausible Tailscales, changeable at run time."""

from dataclasses import asdict, dataclass, field
from typing import Any

from sandbox.settings import (
    AppNodeAttributes,
    ConsentKeyLog,
    ConsentKeyUserId,
    GrantMode,
    ObserverUserKeyAccess,
    SandboxSettings,
    TokenErrorShape,
    parse_latency,
)


@dataclass
class Latency:
    """A delay before Tailscale's answers: uniform in [min, max] seconds, on some routes."""

    min_seconds: float
    max_seconds: float
    # Route names or path prefixes; empty means every Tailscale-facing route except join.
    routes: list[str] = field(default_factory=list)


@dataclass
class Switches:
    """Every switch; the control API shows and patches them by these names."""

    require_pkce: bool
    grant_mode: GrantMode
    access_token_ttl: int
    send_iss: bool
    auto_approve: str | None
    identity_field: str | None
    forced_oauth_error: str | None
    device_approval: bool
    device_quota_exceeded: bool
    token_error_shape: TokenErrorShape
    consent_key_user_id: ConsentKeyUserId
    consent_key_log: ConsentKeyLog
    observer_user_key_access: ObserverUserKeyAccess
    observer_scopes: list[str]
    oauth_app_events: bool
    node_create_key_id: bool
    app_node_attributes: AppNodeAttributes
    latency: Latency | None
    # Whether a refresh rotates the refresh token is [?] at Tailscale; rotation is strictest.
    rotate_refresh_tokens: bool = True

    @classmethod
    def from_settings(cls, settings: SandboxSettings) -> "Switches":
        """Return the switches as the settings set them at start."""
        return cls(
            require_pkce=settings.require_pkce,
            grant_mode=settings.grant_mode,
            access_token_ttl=settings.access_token_ttl,
            send_iss=settings.send_iss,
            auto_approve=settings.auto_approve or None,
            identity_field=settings.identity_field or None,
            forced_oauth_error=None,
            device_approval=settings.device_approval,
            device_quota_exceeded=settings.device_quota_exceeded,
            token_error_shape=settings.token_error_shape,
            consent_key_user_id=settings.consent_key_user_id,
            consent_key_log=settings.consent_key_log,
            observer_user_key_access=settings.observer_user_key_access,
            observer_scopes=list(settings.observer_scopes),
            oauth_app_events=settings.oauth_app_events,
            node_create_key_id=settings.node_create_key_id,
            app_node_attributes=settings.app_node_attributes,
            latency=_latency_from_settings(settings),
        )

    def as_json(self) -> dict[str, Any]:
        """Return the switches as the control API shows them."""
        return asdict(self)


def _latency_from_settings(settings: SandboxSettings) -> Latency | None:
    if not settings.latency_seconds:
        return None
    minimum, maximum = parse_latency(settings.latency_seconds)
    return Latency(minimum, maximum, list(settings.latency_routes))
