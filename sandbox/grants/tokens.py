"""Grants and tokens: reusable-grant access and refresh tokens, revocation, client tokens."""

import secrets
from datetime import timedelta
from typing import Any

from sandbox.audit.log import SANDBOX_WORKER, Target, record_event
from sandbox.errors import OAuthError
from sandbox.identifiers import embedded_secret, new_stable_id, secret_digest
from sandbox.models import AccessToken, Grant, OAuthApp, RefreshToken
from sandbox.scopes import scopes_allow, split_scope
from sandbox.state import SandboxState

FIXED_TOKEN_SECONDS = 3600


def app_target(app: OAuthApp, prop: str = "") -> Target:
    """Return what an (invented [?]) OAUTH_APP event names."""
    return Target("OAUTH_APP", app.id, app.name, property=prop)


def _new_api_token() -> str:
    return embedded_secret("tskey-api-", new_stable_id("k"))


def revoke_grant(
    state: SandboxState, grant: Grant, details: str, group_id: str | None = None
) -> None:
    """Revoke a grant with all its access and refresh tokens. Caller holds the lock."""
    if grant.revoked:
        return
    grant.revoked = True
    for token in state.access_tokens.values():
        if token.grant_id == grant.id:
            token.revoked = True
    for refresh in state.refresh_tokens.values():
        if refresh.grant_id == grant.id:
            refresh.spent = True
    app = state.apps.get(grant.client_id)
    if app is not None:
        record_event(
            state,
            actor=SANDBOX_WORKER,
            target=app_target(app, "GRANT"),
            action="REVOKE",
            origin="CONTROL",
            group_id=group_id,
            old={"grant": grant.id},
            details=details,
        )


def grant_tokens(state: SandboxState, grant: Grant, *, with_refresh: bool = True) -> dict[str, Any]:
    access = _new_api_token()
    ttl = state.switches.access_token_ttl
    state.access_tokens[secret_digest(access)] = AccessToken(
        kind="user",
        scopes=frozenset(split_scope(grant.scope)),
        expires=state.clock.now() + timedelta(seconds=ttl),
        user_id=grant.user_id,
        client_id=grant.client_id,
        grant_id=grant.id,
    )
    body: dict[str, Any] = {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": grant.scope,
    }
    if with_refresh:
        refresh = secrets.token_urlsafe(32)
        state.refresh_tokens[secret_digest(refresh)] = RefreshToken(grant.id, grant.client_id)
        body["refresh_token"] = refresh
    return body


def with_identity(state: SandboxState, body: dict[str, Any], user_id: str) -> dict[str, Any]:
    field = state.switches.identity_field
    if field:
        body[field] = state.users[user_id].login_name
    return body


def refresh_grant(
    state: SandboxState, app: OAuthApp, *, refresh_token: str, scope: str | None
) -> dict[str, Any]:
    """Rotate a refresh token (unless switched off); replaying a spent one revokes the grant."""
    with state.lock:
        record = state.refresh_tokens.get(secret_digest(refresh_token))
        if record is None or record.client_id != app.id:
            raise OAuthError("invalid_grant", "unknown refresh token")
        grant = state.grants[record.grant_id]
        if grant.revoked:
            raise OAuthError("invalid_grant", "the grant has been revoked")
        if record.spent:
            revoke_grant(state, grant, "refresh token replayed")
            raise OAuthError("invalid_grant", "refresh token has already been used")
        held = split_scope(grant.scope)
        if scope and not all(scopes_allow(held, wanted) for wanted in split_scope(scope)):
            raise OAuthError("invalid_scope", "scope exceeds what the grant holds")
        rotate = state.switches.rotate_refresh_tokens
        # Without rotation the answer carries no refresh token and the presented one stays valid.
        record.spent = rotate
        tokens = grant_tokens(state, grant, with_refresh=rotate)
        return with_identity(state, tokens, grant.user_id)


def issue_client_token(
    state: SandboxState, client_id: str, held: list[str], scope: str | None
) -> dict[str, Any]:
    """Issue a client-credentials access token, narrowed to `scope` when given."""
    requested = split_scope(scope) if scope else list(held)
    beyond = [wanted for wanted in requested if not scopes_allow(held, wanted)]
    if not requested or beyond:
        raise OAuthError("invalid_scope", f"OAuth client cannot grant scopes [{' '.join(beyond)}]")
    token = _new_api_token()
    with state.lock:
        state.access_tokens[secret_digest(token)] = AccessToken(
            kind="client",
            scopes=frozenset(requested),
            expires=state.clock.now() + timedelta(seconds=FIXED_TOKEN_SECONDS),
            client_id=client_id,
            follows_client=not scope,
        )
    return {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": FIXED_TOKEN_SECONDS,
        "scope": " ".join(requested),
    }
