"""Consent: authorization codes, their single redemption, and what a redemption issues."""

import base64
import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Any

from sandbox.audit.log import SANDBOX_WORKER, record_event, user_actor
from sandbox.errors import OAuthError
from sandbox.grants.tokens import (
    FIXED_TOKEN_SECONDS,
    app_target,
    grant_tokens,
    revoke_grant,
    with_identity,
)
from sandbox.identifiers import new_stable_id, secret_digest
from sandbox.keys.minting import KeySpec, mint_key, revoke_key
from sandbox.models import AuthorizationCode, Grant, OAuthApp, User
from sandbox.settings import scope_for_grant_mode
from sandbox.state import SandboxState

CODE_LIFETIME = timedelta(minutes=10)


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
            target=app_target(app, "CONSENT"),
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
            target=app_target(app, "CONSENT"),
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


def _revoke_what_code_issued(state: SandboxState, record: AuthorizationCode) -> None:
    details = "authorization code replayed"
    key = state.keys.get(record.issued_key_id or "")
    if key is not None:
        revoke_key(state, key, actor=SANDBOX_WORKER, details=details)
    grant = state.grants.get(record.issued_grant_id or "")
    if grant is not None:
        revoke_grant(state, grant, details)


def _redeem(state: SandboxState, record: AuthorizationCode) -> dict[str, Any]:
    user = state.users[record.user_id]
    if record.mode == "once":
        spec = KeySpec(expiry_seconds=FIXED_TOKEN_SECONDS)
        key, secret = mint_key(
            state, spec, owner_id=user.id, creator=user_actor(user), app_id=record.client_id
        )
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
    return grant_tokens(state, grant)


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
        return with_identity(state, _redeem(state, record), record.user_id)
