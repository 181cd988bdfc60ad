"""Minting, revoking and deleting auth keys, with the consent unknowns as switches."""

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sandbox.audit.log import Target, app_actor, record_event
from sandbox.clock import rfc3339
from sandbox.identifiers import embedded_secret, new_stable_id, secret_digest
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


def key_target(key: AuthKey) -> Target:
    """Return what an event about this key names."""
    return Target(type="API_KEY", id=key.id, name=key.description or key.id)


def capabilities(key: AuthKey) -> dict[str, Any]:
    """Return the key's `capabilities` object."""
    create = {
        "reusable": key.reusable,
        "ephemeral": key.ephemeral,
        "preauthorized": key.preauthorized,
        "tags": list(key.tags),
    }
    return {"devices": {"create": create}}


def _shown_user_id(state: SandboxState, owner_id: str, app_id: str) -> str:
    # Whether a consent-made key names its user is [?]: the consent_key_user_id switch.
    if app_id and state.switches.consent_key_user_id == "empty":
        return ""
    return owner_id


def _creation_actor(state: SandboxState, creator: Actor, app_id: str) -> Actor | None:
    """The actor API_KEY.CREATE names, or None when the event is not logged [?]."""
    if not app_id or state.switches.consent_key_log == "user":
        return creator
    app = state.apps.get(app_id)
    if state.switches.consent_key_log == "absent" or app is None:
        return None
    return app_actor(app)


def mint_key(
    state: SandboxState, spec: KeySpec, *, owner_id: str, creator: Actor, app_id: str = ""
) -> tuple[AuthKey, str]:
    """Create a key and log API_KEY.CREATE; return it with its secret. Caller holds the lock.

    `owner_id` is the person whose devices the key makes ("" for a key the tailnet owns);
    `app_id` marks a key made under an OAuth app's consent, where the switches apply.
    """
    now = state.clock.now()
    key_id = new_stable_id("k")
    secret = embedded_secret(AUTH_KEY_PREFIX, key_id)
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
        owner_id=owner_id,
        user_id=_shown_user_id(state, owner_id, app_id),
        creator=creator,
        app_id=app_id,
    )
    state.keys[key.id] = key
    actor = _creation_actor(state, creator, app_id)
    if actor is not None:
        new = {"keyType": "auth", "expires": rfc3339(key.expires), **capabilities(key)}
        record_event(state, actor=actor, target=key_target(key), action="CREATE", new=new)
    return key, secret


def revoke_key(state: SandboxState, key: AuthKey, *, actor: Actor, details: str) -> None:
    """Revoke a key that stays visible (with `revoked` set). Caller holds the lock."""
    if key.revoked is not None:
        return
    key.revoked = key.updated = state.clock.now()
    record_event(
        state,
        actor=actor,
        target=key_target(key),
        action="REVOKE",
        origin="CONTROL",
        details=details,
        new={"revoked": rfc3339(key.revoked)},
    )


def delete_key(state: SandboxState, key: AuthKey, *, actor: Actor) -> None:
    """Delete a key through the API: it stops working and reads as invalid. Caller holds the lock.

    Tailscale logs a deletion as a revocation (its event list has no API_KEY.DELETE), and a
    deleted key still answers GET with `invalid: true`; deleting it again changes nothing.
    """
    if key.deleted:
        return
    now = state.clock.now()
    key.deleted = True
    key.revoked = key.revoked or now
    key.updated = now
    new = {"revoked": rfc3339(key.revoked)}
    record_event(state, actor=actor, target=key_target(key), action="REVOKE", new=new)
