"""The OAuth core: consent codes, their exchange, grants, refresh rotation, client tokens."""

import base64
import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Any

from sandbox.audit import SANDBOX_WORKER, Target, record_event, user_actor
from sandbox.authkeys import KeySpec, mint_key, revoke_key
from sandbox.errors import OAuthError
from sandbox.identifiers import new_stable_id, random_alphanumeric, secret_digest
from sandbox.models import AccessToken, AuthorizationCode, Grant, OAuthApp, RefreshToken, User
from sandbox.scopes import scopes_allow, split_scope
from sandbox.settings import scope_for_grant_mode
from sandbox.state import SandboxState

CODE_LIFETIME = timedelta(minutes=10)
FIXED_TOKEN_SECONDS = 3600


def _app_target(app: OAuthApp, prop: str = "") -> Target:
    return Target("OAUTH_APP", app.id, app.name, property=prop)


def _new_api_token() -> str:
    return f"tskey-api-{new_stable_id('k')}-{random_alphanumeric(32)}"


def issue_code(
    state: SandboxState,
    app: OAuthApp,
    user: User,
    *,
    redirect_uri: str,
    code_challenge: str | None,
) -> str:
    """Record an approved consent and return its authorization code."""
    code = secrets.token_urlsafe(32)
    with state.lock:
        mode = state.switches.grant_mode
        scope = scope_for_grant_mode(mode)
        state.codes[secret_digest(code)] = AuthorizationCode(
            client_id=app.id,
            redirect_uri=redirect_uri,
            user_id=user.id,
            scope=scope,
            mode=mode,
            code_challenge=code_challenge,
            expires=state.clock.now() + CODE_LIFETIME,
        )
        record_event(
            state,
            actor=user_actor(user),
            target=_app_target(app, "CONSENT"),
            action="APPROVE",
            origin="IDENTITY_PROVIDER",
            new={"scope": scope},
        )
    return code


def record_denial(state: SandboxState, app: OAuthApp, user: User) -> None:
    """Log a denied consent."""
    with state.lock:
        record_event(
            state,
            actor=user_actor(user),
            target=_app_target(app, "CONSENT"),
            action="APPROVE",
            origin="IDENTITY_PROVIDER",
            error="access_denied: the user denied the request",
        )


def pkce_s256(verifier: str) -> str:
    """Return BASE64URL(SHA256(verifier)) without padding (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _check_pkce(record: AuthorizationCode, verifier: str | None) -> None:
    # Without a challenge the verifier is ignored, as a server unaware of PKCE would.
    if record.code_challenge is None:
        return
    if not verifier or not verifier.isascii():
        raise OAuthError("invalid_grant", "code_verifier is required")
    if not hmac.compare_digest(pkce_s256(verifier), record.code_challenge):
        raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge")


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
            target=_app_target(app, "GRANT"),
            action="REVOKE",
            origin="CONTROL",
            group_id=group_id,
            old={"grant": grant.id},
            details=details,
        )


def _revoke_what_code_issued(state: SandboxState, record: AuthorizationCode) -> None:
    details = "authorization code replayed"
    key = state.keys.get(record.issued_key_id or "")
    if key is not None:
        revoke_key(state, key, actor=SANDBOX_WORKER, details=details)
    grant = state.grants.get(record.issued_grant_id or "")
    if grant is not None:
        revoke_grant(state, grant, details)


def _grant_tokens(
    state: SandboxState, grant: Grant, *, with_refresh: bool = True
) -> dict[str, Any]:
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


def _with_identity(state: SandboxState, body: dict[str, Any], user_id: str) -> dict[str, Any]:
    field = state.switches.identity_field
    if field:
        body[field] = state.users[user_id].login_name
    return body


def _redeem(state: SandboxState, record: AuthorizationCode) -> dict[str, Any]:
    user = state.users[record.user_id]
    if record.mode == "once":
        spec = KeySpec(expiry_seconds=FIXED_TOKEN_SECONDS)
        key, secret = mint_key(state, spec, owner_id=user.id, creator=user_actor(user))
        record.issued_key_id = key.id
        return {
            "access_token": secret,
            "token_type": "Bearer",
            "expires_in": FIXED_TOKEN_SECONDS,
            "scope": record.scope,
        }
    grant = Grant(
        id=new_stable_id("g"),
        client_id=record.client_id,
        user_id=user.id,
        scope=record.scope,
        created=state.clock.now(),
    )
    state.grants[grant.id] = grant
    record.issued_grant_id = grant.id
    return _grant_tokens(state, grant)


def exchange_code(
    state: SandboxState, app: OAuthApp, *, code: str, redirect_uri: str, verifier: str | None
) -> dict[str, Any]:
    """Redeem an authorization code once; a replay revokes what the first redemption issued."""
    with state.lock:
        record = state.codes.get(secret_digest(code))
        if record is None or record.client_id != app.id:
            raise OAuthError("invalid_grant", "unknown authorization code")
        if record.used:
            _revoke_what_code_issued(state, record)
            raise OAuthError("invalid_grant", "authorization code has already been used")
        if record.expires <= state.clock.now():
            raise OAuthError("invalid_grant", "authorization code has expired")
        if redirect_uri != record.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri does not match the authorization")
        _check_pkce(record, verifier)
        record.used = True
        return _with_identity(state, _redeem(state, record), record.user_id)


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
        tokens = _grant_tokens(state, grant, with_refresh=rotate)
        return _with_identity(state, tokens, grant.user_id)


def issue_client_token(
    state: SandboxState, client_id: str, held: list[str], scope: str | None
) -> dict[str, Any]:
    """Issue a client-credentials access token, narrowed to `scope` when given."""
    requested = split_scope(scope) if scope else list(held)
    if not requested or not all(scopes_allow(held, wanted) for wanted in requested):
        raise OAuthError("invalid_scope", "scope exceeds what the client holds")
    token = _new_api_token()
    with state.lock:
        state.access_tokens[secret_digest(token)] = AccessToken(
            kind="client",
            scopes=frozenset(requested),
            expires=state.clock.now() + timedelta(seconds=FIXED_TOKEN_SECONDS),
            client_id=client_id,
        )
    return {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": FIXED_TOKEN_SECONDS,
        "scope": " ".join(requested),
    }
