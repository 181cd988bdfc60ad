"""Grant storage, and the locked refresh of reusable grants.

A refresh token is single-use at the strictest Tailscale we plan for: two replicas refreshing
the same grant at once would spend it twice and get the whole grant revoked. So a refresh
runs under the grant's row lock, re-reads after locking, and commits the rotated pair in that
same short transaction before anyone uses the new access token.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.events import WORKER, Actor, Target, format_optional_time, record_event
from service.crypto.keyring import KeyRing
from service.crypto.sealed import token_context
from service.db import transaction
from service.grants.status import GrantMode, GrantStatus
from service.models import ConsentGrant
from service.state import AppContext
from service.tailscale.client import InvalidGrant, TokenGrant
from service.web.errors import ConsentRequired, GrantRevoked, ServiceUnavailable

# Refresh a little early so a token never expires between the check and its use.
REFRESH_MARGIN = timedelta(seconds=60)
# How often a replica looks whether another has finished refreshing, and how much longer
# than one upstream call it waits for that.
LOCK_POLL_SECONDS = 0.1
LOCK_WAIT_SLACK = 5.0
ONE_TIME_KEY_LIFETIME = 3600
_AUTH_KEY_ID = re.compile(r"^tskey-auth-([A-Za-z0-9]+)-")


def grant_target(grant: ConsentGrant, prop: str = "") -> Target:
    return Target(id=str(grant.id), name=grant.user_id, type="GRANT", property=prop)


def auth_key_id(key: str) -> str:
    """The key id inside ``tskey-auth-<id>-<secret>``, or '' when the shape is unknown."""
    match = _AUTH_KEY_ID.match(key)
    return match.group(1) if match else ""


def grant_mode(token: TokenGrant, configured_scope: str) -> GrantMode:
    scope = token.scope or configured_scope
    return (
        GrantMode.REUSABLE
        if token.refresh_token is not None or ":once" not in scope
        else GrantMode.ONCE
    )


async def find_live_reusable_grant(session: AsyncSession, user_id: str) -> ConsentGrant | None:
    now = datetime.now(UTC)
    return await session.scalar(
        select(ConsentGrant)
        .where(
            ConsentGrant.user_id == user_id,
            ConsentGrant.mode == GrantMode.REUSABLE,
            ConsentGrant.status == GrantStatus.ACTIVE,
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
        status=GrantStatus.ACTIVE,
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
    status: GrantStatus,
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
    """A usable access token for a reusable grant, refreshing (once, shared) if due."""
    token = await _fresh_access_token(context, grant_id)
    if token is not None:
        return token
    # Every caller in this process shares one refresh and its outcome, failure included, so
    # none waits on the row lock with a pooled connection, and a failure is not repeated
    # once per waiter.
    return await context.refreshes.run(grant_id, lambda: refresh_grant_locked(context, grant_id))


def _usable(grant: ConsentGrant | None) -> ConsentGrant:
    if grant is not None and grant.status in (GrantStatus.NEEDS_CONSENT, GrantStatus.EXPIRED):
        raise ConsentRequired("The user must consent again.")
    if grant is None or grant.status != GrantStatus.ACTIVE or grant.token_ciphertext is None:
        raise GrantRevoked("The user's grant is no longer active.")
    return grant


def _access_token(key_ring: KeyRing, grant: ConsentGrant) -> SecretStr:
    if grant.token_ciphertext is None:
        raise GrantRevoked("The user's grant holds no token.")
    return SecretStr(key_ring.decrypt_text(grant.token_ciphertext, token_context(grant, "token")))


async def _fresh_access_token(context: AppContext, grant_id: uuid.UUID) -> SecretStr | None:
    async with transaction(context.sessions) as session:
        grant = _usable(await session.get(ConsentGrant, grant_id))
        if not _fresh(grant):
            return None
        grant.last_used_at = datetime.now(UTC)
        return _access_token(context.require_key_ring(), grant)


async def refresh_grant_locked(context: AppContext, grant_id: uuid.UUID) -> SecretStr:
    """Refresh once per grant across every replica; see the module docstring.

    Another replica may hold the grant's row for a whole upstream call, so the lock is
    polled with SKIP LOCKED, holding no connection between tries, for at most that long.
    """
    give_up = time.monotonic() + context.settings.upstream_deadline_seconds + LOCK_WAIT_SLACK
    while True:
        token = await _refresh_if_unlocked(context, grant_id)
        if token is not None:
            return token
        if time.monotonic() > give_up:
            raise ServiceUnavailable(
                "The user's grant is being refreshed elsewhere; retry.",
                headers={"Retry-After": "1"},
            )
        await asyncio.sleep(LOCK_POLL_SECONDS)


async def _refresh_if_unlocked(context: AppContext, grant_id: uuid.UUID) -> SecretStr | None:
    """The access token after refreshing under the row lock; None while another holds it."""
    key_ring = context.require_key_ring()
    async with transaction(context.sessions) as session:
        locked = await session.scalar(
            select(ConsentGrant)
            .where(ConsentGrant.id == grant_id)
            .with_for_update(skip_locked=True)
        )
        if locked is None:
            _usable(await session.get(ConsentGrant, grant_id))  # gone or revoked: raises
            return None
        grant = _usable(locked)
        if _fresh(grant):  # another replica refreshed while we waited
            return _access_token(key_ring, grant)
        token = await _refresh_upstream(context, key_ring, grant)
        if token is not None:
            await _store_refreshed(session, key_ring, grant, token)
            return token.access_token
        await set_grant_status(
            session,
            grant,
            GrantStatus.NEEDS_CONSENT,
            actor=WORKER,
            origin="CONTROL",
            action="UPDATE",
            error="the grant can no longer be refreshed",
        )
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
