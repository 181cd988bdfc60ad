"""What the caller API answers, as typed objects; unknown members are ignored, so a newer
server does not break an older client."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Generic, Literal, TypeVar

RequestStatus = Literal[
    "awaiting_consent", "ready", "claimed", "joined", "expired", "cancelled", "failed"
]
# Statuses a request never leaves; waiting on one of them is pointless.
FINAL_STATUSES = frozenset({"expired", "cancelled", "failed"})

Json = dict[str, Any]
T = TypeVar("T")


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 timestamp as an aware datetime; ``None`` stays ``None``."""
    if value is None:
        return None
    text = str(value)
    # Python 3.10's fromisoformat does not read the "Z" suffix.
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _required_time(value: object) -> datetime:
    parsed = parse_time(value)
    if parsed is None:
        raise ValueError("a required timestamp is missing")
    return parsed


def _optional_text(value: object) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class Failure:
    """Why a request ended: a stable ``code`` and a message for people."""

    code: str
    message: str

    @classmethod
    def from_json(cls, data: object) -> Failure | None:
        if not isinstance(data, dict) or not data.get("code"):
            return None
        return cls(code=str(data["code"]), message=str(data.get("message") or ""))


@dataclass(frozen=True)
class GrantSummary:
    """The grant a request was consented under: its mode and the consenting login."""

    mode: str
    login_name: str | None

    @classmethod
    def from_json(cls, data: object) -> GrantSummary | None:
        if not isinstance(data, dict):
            return None
        return cls(mode=str(data["mode"]), login_name=_optional_text(data.get("login_name")))


@dataclass(frozen=True)
class DeviceSummary:
    """The device that joined with the request's key, once tsprov has seen it."""

    node_id: str
    name: str | None
    user: str | None
    joined_at: datetime | None
    # False while the device waits for approval in a tailnet that requires it; None when
    # tsprov does not know (or is older than this field).
    authorized: bool | None = None

    @classmethod
    def from_json(cls, data: object) -> DeviceSummary | None:
        if not isinstance(data, dict):
            return None
        authorized = data.get("authorized")
        return cls(
            node_id=str(data["node_id"]),
            name=_optional_text(data.get("name")),
            user=_optional_text(data.get("user")),
            joined_at=parse_time(data.get("joined_at")),
            authorized=authorized if isinstance(authorized, bool) else None,
        )


@dataclass(frozen=True)
class ProvisioningRequest:
    """A caller's ask for one device for one user."""

    id: str
    user_id: str
    status: str
    hostname: str | None
    description: str | None
    consent_url: str | None
    consent_expires_at: datetime | None
    key_expires_at: datetime | None
    grant: GrantSummary | None
    device: DeviceSummary | None
    failure: Failure | None
    created_by: str
    created_at: datetime
    updated_at: datetime

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @classmethod
    def from_json(cls, data: Json) -> ProvisioningRequest:
        return cls(
            id=str(data["id"]),
            user_id=str(data["user_id"]),
            status=str(data["status"]),
            hostname=_optional_text(data.get("hostname")),
            description=_optional_text(data.get("description")),
            consent_url=_optional_text(data.get("consent_url")),
            consent_expires_at=parse_time(data.get("consent_expires_at")),
            key_expires_at=parse_time(data.get("key_expires_at")),
            grant=GrantSummary.from_json(data.get("grant")),
            device=DeviceSummary.from_json(data.get("device")),
            failure=Failure.from_json(data.get("failure")),
            created_by=str(data.get("created_by") or ""),
            created_at=_required_time(data["created_at"]),
            updated_at=_required_time(data["updated_at"]),
        )


@dataclass(frozen=True)
class Claim:
    """The claim answer. ``repr`` hides the key and the line that carries it."""

    auth_key: str = field(repr=False)
    expires_at: datetime | None
    tailscale_up: str = field(repr=False)

    @classmethod
    def from_json(cls, data: Json) -> Claim:
        return cls(
            auth_key=str(data["auth_key"]),
            expires_at=parse_time(data.get("expires_at")),
            tailscale_up=str(data["tailscale_up"]),
        )


@dataclass(frozen=True)
class Provisioned:
    """What ``provision`` hands back: the key, its expiry and its ``tailscale up`` line.

    ``repr`` hides the key and the line; ``consent_url`` is the link that was shown, if any.
    """

    request_id: str
    user_id: str
    hostname: str | None
    login_name: str | None
    auth_key: str = field(repr=False)
    expires_at: datetime | None
    tailscale_up: str = field(repr=False)
    consent_url: str | None


@dataclass(frozen=True)
class Grant:
    """A grant's metadata; tsprov never answers a grant's secrets."""

    id: str
    mode: str
    status: str
    login_name: str | None
    scope: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def from_json(cls, data: Json) -> Grant:
        return cls(
            id=str(data["id"]),
            mode=str(data["mode"]),
            status=str(data["status"]),
            login_name=_optional_text(data.get("login_name")),
            scope=str(data.get("scope") or ""),
            created_at=_required_time(data["created_at"]),
            expires_at=parse_time(data.get("expires_at")),
            last_used_at=parse_time(data.get("last_used_at")),
        )


@dataclass(frozen=True)
class User:
    """A person as callers name them, with the Tailscale login expected to consent."""

    user_id: str
    tailscale_login: str | None
    display_name: str | None
    created_at: datetime
    updated_at: datetime
    grants: list[Grant]

    @classmethod
    def from_json(cls, data: Json) -> User:
        return cls(
            user_id=str(data["user_id"]),
            tailscale_login=_optional_text(data.get("tailscale_login")),
            display_name=_optional_text(data.get("display_name")),
            created_at=_required_time(data["created_at"]),
            updated_at=_required_time(data["updated_at"]),
            grants=[Grant.from_json(item) for item in data.get("grants") or []],
        )


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list; pass ``next_cursor`` back as ``cursor`` for the next one."""

    items: list[T]
    next_cursor: str | None
