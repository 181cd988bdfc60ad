"""Grant storage, and the locked refresh of reusable grants.

A refresh token is single-use at the strictest Tailscale we plan for: two replicas refreshing
the same grant at once would spend it twice and get the whole grant revoked. So a refresh
runs under the grant's row lock, re-reads after locking, and commits the rotated pair in that
same short transaction before anyone uses the new access token.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr
from sqlalchemy import or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit import WORKER, Actor, Target, format_optional_time, record_event
from service.context import AppContext
from service.crypto import KeyRing
from service.db import transaction
from service.errors import ConsentRequired, GrantRevoked
from service.models import ConsentGrant
from service.sealed import token_context
from service.tailscale import InvalidGrant, TokenGrant

# Refresh a little early so a token never expires between the check and its use.
REFRESH_MARGIN = timedelta(seconds=60)
ONE_TIME_KEY_LIFETIME = 3600
_AUTH_KEY_ID = re.compile(r"^tskey-auth-([A-Za-z0-9]+)-")


def grant_target(grant: ConsentGrant, prop: str = "") -> Target:
    return Target(id=str(grant.id), name=grant.user_id, type="GRANT", property=prop)


def auth_key_id(key: str) -> str:
    """The key id inside ``tskey-auth-<id>-<secret>``, or '' when the shape is unknown."""
    match = _AUTH_KEY_ID.match(key)
    return match.group(1) if match else ""


def grant_mode(token: TokenGrant, configured_scope: str) -> str:
    scope = token.scope or configured_scope
    return "reusable" if token.refresh_token is not None or ":once" not in scope else "once"


async def find_live_reusable_grant(session: AsyncSession, user_id: str) -> ConsentGrant | None:
    now = datetime.now(UTC)
    return await session.scalar(
        select(ConsentGrant)
        .where(
            ConsentGrant.user_id == user_id,
            ConsentGrant.mode == "reusable",
            ConsentGrant.status == "active",
            or_(ConsentGrant.expires_at.is_(None), ConsentGrant.expires_at > now),
        )
        .order_by(ConsentGrant.created_at.desc())
        .limit(1)
    )


def seal_tokens(grant: ConsentGrant, key_ring: KeyRing, token: TokenGrant) -> None:
    """Seal the access token, and the refresh token when one came (else keep the old one)."""
    now = datetime.now(UTC)
    lifetime = token.expires_in or ONE_TIME_KEY_LIFETIME
    grant.token_ciphertext = key_ring.encrypt_text(
        token.access_token.get_secret_value(), token_context(grant, "token")
    )
    grant.token_expires_at = now + timedelta(seconds=lifetime)
    if token.refresh_token is not None:
        grant.refresh_ciphertext = key_ring.encrypt_text(
            token.refresh_token.get_secret_value(), token_context(grant, "refresh")
        )
    if grant.refresh_ciphertext is None:
        grant.expires_at = grant.token_expires_at


def wipe_tokens(grant: ConsentGrant) -> None:
    grant.token_ciphertext = None
    grant.refresh_ciphertext = None
    grant.updated_at = datetime.now(UTC)


async def store_grant(
    session: AsyncSession,
    key_ring: KeyRing,
    token: TokenGrant,
    *,
    user_id: str,
    scope: str,
    actor: Actor,
    origin: str,
) -> ConsentGrant:
    """Keep what a consent yielded, sealed, and audit it (and the key, for one-time grants)."""
    grant = ConsentGrant(
        id=uuid.uuid4(),
        user_id=user_id,
        mode=grant_mode(token, scope),
        status="active",
        login_name=token.login_name,
        scope=token.scope or scope,
    )
    seal_tokens(grant, key_ring, token)
    session.add(grant)
    await session.flush()
    await _audit_new_grant(session, grant, token, actor, origin)
    return grant


async def _audit_new_grant(
    session: AsyncSession, grant: ConsentGrant, token: TokenGrant, actor: Actor, origin: str
) -> None:
    expires = format_optional_time(grant.expires_at)
    await record_event(
        session,
        origin=origin,
        actor=actor,
        target=grant_target(grant),
        action="CREATE",
        new={"mode": grant.mode, "status": grant.status, "expiresAt": expires},
        user_id=grant.user_id,
    )
    if grant.mode == "once":
        key_id = auth_key_id(token.access_token.get_secret_value())
        await record_event(
            session,
            origin=origin,
            actor=actor,
            target=Target(id=key_id, name=grant.user_id, type="API_KEY"),
            action="CREATE",
            new={"expiresAt": expires},
            details="one-time key from consent",
            user_id=grant.user_id,
        )


async def set_grant_status(
    session: AsyncSession,
    grant: ConsentGrant,
    status: str,
    *,
    actor: Actor,
    origin: str,
    action: str,
    error: str = "",
) -> None:
    old = grant.status
    grant.status = status
    wipe_tokens(grant)
    await session.flush()
    await record_event(
        session,
        origin=origin,
        actor=actor,
        target=grant_target(grant, "STATUS"),
        action=action,
        old=old,
        new=status,
        error=error,
        user_id=grant.user_id,
    )


async def access_token_for(context: AppContext, grant_id: uuid.UUID) -> SecretStr:
    """A usable access token for a reusable grant, refreshing under the row lock if due."""
    token = await _fresh_access_token(context, grant_id)
    if token is not None:
        return token
    # Calls in this process queue here, not on the row lock: a waiter on the row lock holds
    # a pooled connection, and fifty of them would drain the pool during one refresh.
    async with context.refresh_locks.hold(grant_id):
        token = await _fresh_access_token(context, grant_id)
        return token if token is not None else await refresh_grant_locked(context, grant_id)


async def _fresh_access_token(context: AppContext, grant_id: uuid.UUID) -> SecretStr | None:
    key_ring = context.require_key_ring()
    async with transaction(context.sessions) as session:
        grant = await session.get(ConsentGrant, grant_id)
        if grant is None or grant.status != "active" or grant.token_ciphertext is None:
            raise GrantRevoked("The user's grant is no longer active.")
        if not _fresh(grant):
            return None
        grant.last_used_at = datetime.now(UTC)
        return SecretStr(
            key_ring.decrypt_text(grant.token_ciphertext, token_context(grant, "token"))
        )


async def refresh_grant_locked(context: AppContext, grant_id: uuid.UUID) -> SecretStr:
    """Refresh once per grant across every replica; see the module docstring."""
    key_ring = context.require_key_ring()
    async with transaction(context.sessions) as session:
        # Another replica may hold the row for a whole upstream call: wait that long, not
        # the usual statement timeout.
        wait_ms = int((context.settings.upstream_deadline_seconds + 5) * 1000)
        await session.execute(text(f"SET LOCAL statement_timeout = {wait_ms}"))
        grant = await session.scalar(
            select(ConsentGrant).where(ConsentGrant.id == grant_id).with_for_update()
        )
        if grant is None or grant.status != "active" or grant.token_ciphertext is None:
            raise GrantRevoked("The user's grant is no longer active.")
        if _fresh(grant):  # another replica refreshed while we waited for the lock
            return SecretStr(
                key_ring.decrypt_text(grant.token_ciphertext, token_context(grant, "token"))
            )
        token = await _refresh_upstream(context, key_ring, grant)
        if token is None:
            await set_grant_status(
                session,
                grant,
                "needs_consent",
                actor=WORKER,
                origin="CONTROL",
                action="UPDATE",
                error="the grant can no longer be refreshed",
            )
        else:
            await _store_refreshed(session, key_ring, grant, token)
            return token.access_token
    raise ConsentRequired("The user must consent again.")


async def _refresh_upstream(
    context: AppContext, key_ring: KeyRing, grant: ConsentGrant
) -> TokenGrant | None:
    """The refreshed tokens, or None when the grant can no longer be refreshed."""
    if grant.refresh_ciphertext is None:
        return None
    refresh = key_ring.decrypt_text(grant.refresh_ciphertext, token_context(grant, "refresh"))
    try:
        return await context.tailscale.refresh(SecretStr(refresh))
    except InvalidGrant:
        return None


async def _store_refreshed(
    session: AsyncSession, key_ring: KeyRing, grant: ConsentGrant, token: TokenGrant
) -> None:
    old_expiry = format_optional_time(grant.token_expires_at)
    seal_tokens(grant, key_ring, token)
    grant.last_used_at = grant.updated_at = datetime.now(UTC)
    await record_event(
        session,
        origin="CONTROL",
        actor=WORKER,
        target=grant_target(grant, "TOKEN_EXPIRY"),
        action="UPDATE",
        old=old_expiry,
        new=format_optional_time(grant.token_expires_at),
        user_id=grant.user_id,
    )


def _fresh(grant: ConsentGrant) -> bool:
    expires = grant.token_expires_at
    return expires is not None and expires - REFRESH_MARGIN > datetime.now(UTC)
