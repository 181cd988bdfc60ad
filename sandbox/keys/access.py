"""Who may see which key, and the Key object for auth keys and OAuth clients."""

from datetime import datetime
from typing import Any

from sandbox.bearer import Caller
from sandbox.clock import rfc3339
from sandbox.errors import NOT_PERMITTED, ApiError
from sandbox.keys.minting import capabilities
from sandbox.models import AuthKey, OAuthClient
from sandbox.state import SandboxState


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
            "capabilities": capabilities(key),
            "description": key.description,
            "invalid": key.invalid_at(now),
            "userId": key.user_id,
        }
    )
    return body


def client_key_json(client: OAuthClient) -> dict[str, Any]:
    """Return an OAuth client as the keys API shows it: its scopes and tags, no secret."""
    return {
        "id": client.id,
        "keyType": "client",
        "created": rfc3339(client.created),
        "updated": rfc3339(client.created),
        "revoked": rfc3339(None),
        "scopes": list(client.scopes),
        "tags": list(client.tags),
        "description": client.description,
        "invalid": False,
        "userId": client.creator_id,
    }


def _refusal(state: SandboxState, caller: Caller, key: AuthKey) -> ApiError | None:
    """Why an OAuth client may not touch a user's key, per observer_user_key_access [?]."""
    if caller.kind != "client" or not key.owner_id:
        return None
    access = state.switches.observer_user_key_access
    if access == "not_found":
        return ApiError(404, "key not found")
    if access == "forbidden":
        return ApiError(403, NOT_PERMITTED)
    return None


def reachable_key(state: SandboxState, caller: Caller, key_id: str) -> AuthKey:
    """Return an auth key the caller may read or delete, or raise. Caller holds the lock."""
    key = state.keys.get(key_id)
    if key is None:
        raise ApiError(404, "key not found")
    refusal = _refusal(state, caller, key)
    if refusal is not None:
        raise refusal
    return key


def client_key(state: SandboxState, caller: Caller, client_id: str) -> dict[str, Any] | None:
    """Return an OAuth client's Key when `client_id` names one; None when it does not.

    A client's own tokens may read its Key whatever their scopes, as Tailscale documents.
    """
    client = state.clients.get(client_id)
    if client is None:
        return None
    if caller.client_id != client.id:
        caller.require("oauth_keys:read")
    return client_key_json(client)


def listed_keys(state: SandboxState, caller: Caller, *, every: bool) -> list[dict[str, Any]]:
    """Return the active auth keys a listing shows this caller. Caller holds the lock.

    Without `all`, a user token sees the keys it owns and a client token the keys the
    tailnet owns [?]; with `all`, every key the caller may read.
    """
    now = state.clock.now()
    shown = []
    for key in state.keys.values():
        if key.invalid_at(now) or _refusal(state, caller, key) is not None:
            continue
        if every or key.owner_id == caller.user_id:
            shown.append(key_json(key, now))
    return shown
