"""The sandbox's in-memory records; all times are aware UTC datetimes."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

# A personal API token and a reusable grant's token both act as a user.
CallerKind = Literal["user", "client"]
Actor = dict[str, Any]


@dataclass
class User:
    """A member of the seeded tailnet."""

    id: str
    login_name: str
    display_name: str
    role: Literal["admin", "member"]
    created: datetime


@dataclass
class OAuthApp:
    """An OAuth app: authorization-code grants acting as the consenting user."""

    id: str
    name: str
    description: str
    redirect_uris: list[str]
    scopes: list[str]
    allowed_node_attributes: list[str]
    secret_digest: str
    created: datetime
    updated: datetime


@dataclass
class OAuthClient:
    """An OAuth client: client-credentials grants acting as a service identity."""

    id: str
    description: str
    secret_digest: str
    scopes: list[str]
    tags: list[str]
    created: datetime
    creator_id: str


@dataclass
class AuthKey:
    """An auth key a device joins with."""

    id: str
    secret_digest: str
    created: datetime
    updated: datetime
    expires: datetime
    expiry_seconds: int
    reusable: bool
    ephemeral: bool
    preauthorized: bool
    tags: list[str]
    description: str
    # The person whose devices this key makes; `user_id` is what the API shows of it.
    owner_id: str
    user_id: str
    creator: Actor
    # The OAuth app whose consent the key came from, directly or through a grant's token.
    app_id: str = ""
    revoked: datetime | None = None
    deleted: bool = False
    uses: int = 0

    def invalid_at(self, now: datetime) -> bool:
        """True when revoked or expired, as Tailscale's `invalid` field says."""
        return self.revoked is not None or self.expires <= now


@dataclass
class Device:
    """A node that joined the tailnet."""

    id: str
    node_id: str
    user_id: str
    user_login: str
    hostname: str
    name: str
    addresses: list[str]
    os: str
    client_version: str
    created: datetime
    last_seen: datetime
    expires: datetime | None
    authorized: bool
    is_ephemeral: bool
    tags: list[str]
    machine_key: str
    node_key: str
    tailnet_lock_key: str
    key_id: str
    connected: bool = True
    attributes: dict[str, Any] = field(default_factory=dict)
    attribute_expiries: dict[str, datetime] = field(default_factory=dict)


@dataclass
class AuthorizationCode:
    """A code issued by the consent screen, redeemable once within its life."""

    client_id: str
    redirect_uri: str
    user_id: str
    scope: str
    mode: Literal["once", "reusable"]
    code_challenge: str | None
    expires: datetime
    used: bool = False
    issued_key_id: str | None = None
    issued_grant_id: str | None = None


@dataclass
class Grant:
    """A reusable-mode consent: the root of a chain of access and refresh tokens."""

    id: str
    client_id: str
    user_id: str
    scope: str
    created: datetime
    revoked: bool = False


@dataclass
class AccessToken:
    """A bearer token the API accepts."""

    kind: CallerKind
    scopes: frozenset[str]
    expires: datetime | None
    user_id: str = ""
    client_id: str = ""
    grant_id: str | None = None
    revoked: bool = False
    # A client token asked without `scope` holds whatever its client holds at each use.
    follows_client: bool = False


@dataclass
class RefreshToken:
    """A single-use refresh token of a grant."""

    grant_id: str
    client_id: str
    spent: bool = False


@dataclass
class AuditEvent:
    """One configuration audit log entry."""

    event_time: datetime
    group_id: str
    origin: str
    actor: Actor
    target: dict[str, Any]
    action: str
    name: str
    old: Any = None
    new: Any = None
    details: str = ""
    error: str = ""


@dataclass
class FaultRule:
    """An injected misbehaviour for matching requests."""

    id: int
    route: str
    method: str | None = None
    grant_type: str | None = None
    latency_seconds: float = 0.0
    fail_times: int | None = None
    status: int | None = None
    retry_after: str | None = None
    lost_response: bool = False
    body: str | None = None
    drip_seconds: float = 0.0
    fired: int = 0


@dataclass
class LoggedRequest:
    """A request as the request log shows it: never a secret, a query string or a body."""

    id: int
    time: datetime
    method: str
    path: str
    route: str
    grant_type: str | None
    status: int | None
    lost: bool
    fault_id: int | None
