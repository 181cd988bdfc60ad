"""Auth keys: minting, revoking, deleting, and the Key object."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sandbox.audit import Target, record_event
from sandbox.clock import rfc3339
from sandbox.errors import ApiError
from sandbox.identifiers import new_stable_id, random_alphanumeric, secret_digest
from sandbox.models import Actor, AuthKey
from sandbox.state import SandboxState

AUTH_KEY_PREFIX = "tskey-auth-"
DEFAULT_EXPIRY_SECONDS = 90 * 24 * 3600


@dataclass(frozen=True)
class KeySpec:
    """What a new key may do."""

    reusable: bool = False
    ephemeral: bool = False
    preauthorized: bool = False
    tags: list[str] = field(default_factory=list)
    expiry_seconds: int = DEFAULT_EXPIRY_SECONDS
    description: str = ""


def _key_target(key: AuthKey) -> Target:
    return Target(type="API_KEY", id=key.id, name=key.description or key.id)


def _capabilities(key: AuthKey) -> dict[str, Any]:
    create = {
        "reusable": key.reusable,
        "ephemeral": key.ephemeral,
        "preauthorized": key.preauthorized,
        "tags": list(key.tags),
    }
    return {"devices": {"create": create}}


def mint_key(
    state: SandboxState,
    spec: KeySpec,
    *,
    owner_id: str,
    creator: Actor,
) -> tuple[AuthKey, str]:
    """Create a key and log API_KEY.CREATE; return it with its secret. Caller holds the lock."""
    now = state.clock.now()
    key_id = new_stable_id("k")
    secret = f"{AUTH_KEY_PREFIX}{key_id}-{random_alphanumeric(32)}"
    key = AuthKey(
        id=key_id,
        secret_digest=secret_digest(secret),
        created=now,
        updated=now,
        expires=now + timedelta(seconds=spec.expiry_seconds),
        expiry_seconds=spec.expiry_seconds,
        reusable=spec.reusable,
        ephemeral=spec.ephemeral,
        preauthorized=spec.preauthorized,
        tags=list(spec.tags),
        description=spec.description,
        user_id=owner_id,
        creator=creator,
    )
    state.keys[key.id] = key
    record_event(
        state,
        actor=creator,
        target=_key_target(key),
        action="CREATE",
        new={"keyType": "auth", "expires": rfc3339(key.expires), **_capabilities(key)},
    )
    return key, secret


def revoke_key(state: SandboxState, key: AuthKey, *, actor: Actor, details: str) -> None:
    """Revoke a key that stays visible (with `revoked` set). Caller holds the lock."""
    if key.revoked is not None:
        return
    key.revoked = key.updated = state.clock.now()
    record_event(
        state,
        actor=actor,
        target=_key_target(key),
        action="REVOKE",
        origin="CONTROL",
        details=details,
        new={"revoked": rfc3339(key.revoked)},
    )


def visible_key(state: SandboxState, key_id: str) -> AuthKey:
    """Return a key the API can still see, or raise 404. Caller holds the lock."""
    key = state.keys.get(key_id)
    if key is None or key.deleted:
        raise ApiError(404, "key not found")
    return key


def delete_key(state: SandboxState, key_id: str, *, actor: Actor) -> None:
    """Delete a key through the API: it stops working and disappears. Takes the lock."""
    with state.lock:
        key = visible_key(state, key_id)
        key.deleted = True
        if key.revoked is None:
            key.revoked = state.clock.now()
        key.updated = state.clock.now()
        record_event(state, actor=actor, target=_key_target(key), action="DELETE")


def key_json(key: AuthKey, now: datetime, secret: str | None = None) -> dict[str, Any]:
    """Return the Key object; the secret appears only in the create response."""
    body: dict[str, Any] = {"id": key.id}
    if secret is not None:
        body["key"] = secret
    body.update(
        {
            "keyType": "auth",
            "created": rfc3339(key.created),
            "updated": rfc3339(key.updated),
            "expires": rfc3339(key.expires),
            "revoked": rfc3339(key.revoked),
            "expirySeconds": key.expiry_seconds,
            "capabilities": _capabilities(key),
            "description": key.description,
            "invalid": key.invalid_at(now),
            "userId": key.user_id,
        }
    )
    return body
