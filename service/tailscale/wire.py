"""Tailscale's side of the wire: typed answers, the one error hierarchy, defensive parsing."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from pydantic import SecretStr

_T = TypeVar("_T")
# Go's zero time stands for "never" or "unknown" in Tailscale's JSON.
_ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)


class TailscaleError(Exception):
    """Any failure talking to Tailscale; ``code`` is the stable problem code."""

    code: ClassVar[str] = "upstream_error"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UpstreamUnavailable(TailscaleError):
    """Tailscale was unreachable, slow, overloaded or answered unusably; later may work."""

    code = "upstream_unavailable"


class CircuitOpen(UpstreamUnavailable):
    """Recent calls kept failing, so this one was refused without calling Tailscale."""


class BodyTooLarge(UpstreamUnavailable):
    """Tailscale's answer was larger than any answer tsprov expects."""


class OutcomeUnknown(UpstreamUnavailable):
    """A non-idempotent request may have taken effect upstream; reconcile, never resend."""

    code = "upstream_outcome_unknown"


class OAuthError(TailscaleError):
    """The token endpoint refused the request (RFC 6749 §5.2)."""

    code = "upstream_oauth_error"

    def __init__(self, error: str, description: str | None) -> None:
        text = f"Tailscale's token endpoint answered {error}"
        super().__init__(f"{text}: {description}" if description else text)
        self.error = error
        self.description = description


class InvalidGrant(OAuthError):
    """The code or refresh token is spent, expired or revoked: the user must consent again."""

    code = "consent_required"


class UpstreamRefused(TailscaleError):
    """The Tailscale API refused the request with a 4xx other than 429."""

    code = "upstream_refused"

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Tailscale answered {status}: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True)
class TailscaleEndpoints:
    login_url: str
    api_url: str
    tailnet: str


@dataclass(frozen=True)
class OAuthCredentials:
    client_id: str
    client_secret: SecretStr


@dataclass(frozen=True)
class TokenGrant:
    access_token: SecretStr
    token_type: str
    expires_in: int | None
    scope: str | None
    refresh_token: SecretStr | None
    login_name: str | None


@dataclass(frozen=True)
class MintedKey:
    key_id: str
    key: SecretStr
    expires: datetime | None
    user_id: str = ""  # the key's creator as Tailscale names it; empty when it names nobody


@dataclass(frozen=True)
class KeyOwner:
    """What ``GET keys/{id}`` says about who made a key."""

    key_id: str
    user_id: str
    invalid: bool


@dataclass(frozen=True)
class Device:
    node_id: str
    legacy_id: str
    name: str
    hostname: str
    user: str
    os: str
    addresses: list[str]
    created: datetime | None
    last_seen: datetime | None
    authorized: bool
    is_ephemeral: bool
    tags: list[str]


def json_object(body: bytes) -> dict[str, Any]:
    try:
        data: Any = json.loads(body)
    except (ValueError, RecursionError):
        # Raised below, outside the handler: a JSONDecodeError keeps the whole document,
        # which may hold a token, and would ride along as the new error's context.
        data = None
    if not isinstance(data, dict):
        raise UpstreamUnavailable("Tailscale's answer is not a JSON object")
    return data


def object_list(body: bytes, key: str) -> list[dict[str, Any]]:
    # Go encodes an empty slice as null.
    items = _optional(json_object(body), key, list) or []
    if not all(isinstance(item, dict) for item in items):
        raise UpstreamUnavailable(f"Tailscale's {key!r} holds something other than objects")
    return items


def expect_success(status: int) -> None:
    if not 200 <= status < 300:
        raise UpstreamUnavailable(f"Tailscale answered an unexpected status {status}")


def _optional(data: Mapping[str, Any], key: str, kind: type[_T]) -> _T | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise UpstreamUnavailable(f"Tailscale's answer has a malformed {key!r}")
    return value


def _required_str(data: Mapping[str, Any], key: str) -> str:
    value = _optional(data, key, str)
    if not value:
        raise UpstreamUnavailable(f"Tailscale's answer has no {key!r}")
    return value


def _str_list(data: Mapping[str, Any], key: str) -> list[str]:
    items = _optional(data, key, list) or []
    if not all(isinstance(item, str) for item in items):
        raise UpstreamUnavailable(f"Tailscale's answer has a malformed {key!r}")
    return items


def _time(data: Mapping[str, Any], key: str) -> datetime | None:
    value = _optional(data, key, str)
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UpstreamUnavailable(f"Tailscale's answer has a malformed {key!r}") from None
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None if parsed == _ZERO_TIME else parsed


def _expires_in(data: Mapping[str, Any]) -> int | None:
    value = data.get("expires_in")
    # RFC 6749 says a number; some servers send a string or a float.
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return _optional(data, "expires_in", int)


def _identity(data: Mapping[str, Any], path: Sequence[str]) -> str | None:
    """Follow a dotted path; a field that is absent or not a string names nobody."""
    value: Any = data
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return value if isinstance(value, str) and value else None


def token_grant(body: bytes, identity_path: Sequence[str] | None) -> TokenGrant:
    data = json_object(body)
    access_token = _required_str(data, "access_token")
    refresh_token = _optional(data, "refresh_token", str)
    return TokenGrant(
        access_token=SecretStr(access_token),
        token_type=_optional(data, "token_type", str) or "Bearer",
        expires_in=_expires_in(data),
        scope=_optional(data, "scope", str) or None,
        # An empty refresh token is no refresh token: the grant is single-use.
        refresh_token=SecretStr(refresh_token) if refresh_token else None,
        login_name=_identity(data, identity_path) if identity_path else None,
    )


def minted_key(body: bytes) -> MintedKey:
    data = json_object(body)
    key = SecretStr(_required_str(data, "key"))
    return MintedKey(
        key_id=_required_str(data, "id"),
        key=key,
        expires=_time(data, "expires"),
        user_id=_optional(data, "userId", str) or "",
    )


def key_owner(body: bytes) -> KeyOwner:
    data = json_object(body)
    return KeyOwner(
        key_id=_required_str(data, "id"),
        user_id=_optional(data, "userId", str) or "",
        invalid=bool(_optional(data, "invalid", bool)),
    )


@dataclass(frozen=True)
class ListedKey:
    """One key of ``GET keys``: enough to find a key by the description tsprov gave it."""

    key_id: str
    description: str
    invalid: bool


def listed_key(data: Mapping[str, Any]) -> ListedKey:
    return ListedKey(
        key_id=_required_str(data, "id"),
        description=_optional(data, "description", str) or "",
        invalid=bool(_optional(data, "invalid", bool)),
    )


def login_name(body: bytes) -> str:
    """A User object's ``loginName``."""
    return _required_str(json_object(body), "loginName")


def device(data: Mapping[str, Any]) -> Device:
    return Device(
        node_id=_required_str(data, "nodeId"),
        legacy_id=_optional(data, "id", str) or "",
        name=_optional(data, "name", str) or "",
        hostname=_optional(data, "hostname", str) or "",
        user=_optional(data, "user", str) or "",
        os=_optional(data, "os", str) or "",
        addresses=_str_list(data, "addresses"),
        created=_time(data, "created"),
        last_seen=_time(data, "lastSeen"),
        authorized=bool(_optional(data, "authorized", bool)),
        is_ephemeral=bool(_optional(data, "isEphemeral", bool)),
        tags=_str_list(data, "tags"),
    )


def rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no place on Tailscale's wire")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
