"""The locked refresh of reusable grants, shared by every caller in a process.

A refresh token is single-use at the strictest Tailscale we plan for: two replicas refreshing
the same grant at once would spend it twice and get the whole grant revoked. So a refresh
runs under the grant's row lock, re-reads after locking, and commits the rotated pair in that
same short transaction before anyone uses the new access token. These functions take the app
state and open their own short transactions for exactly that reason.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.events import WORKER, format_optional_time, record_event
from service.crypto.keyring import KeyRing
from service.crypto.sealed import token_context
from service.db import transaction
from service.grants.status import GrantStatus
from service.grants.store import (
    grant_target,
    load_grant,
    seal_tokens,
    set_grant_status,
    try_lock_grant,
)
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


def fresh_access_token(key_ring: KeyRing, grant: ConsentGrant) -> SecretStr | None:
    """The token of an active grant not yet due for refresh, read in the caller's transaction.

    None otherwise: ``access_token_for`` then refreshes under the row lock, or raises why
    the grant cannot be used.
    """
    if grant.status != GrantStatus.ACTIVE or grant.token_ciphertext is None:
        return None
    return _access_token(key_ring, grant) if _fresh(grant) else None


async def _fresh_access_token(context: AppContext, grant_id: uuid.UUID) -> SecretStr | None:
    async with transaction(context.sessions) as session:
        grant = _usable(await load_grant(session, grant_id))
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
    waited = False
    while True:
        token = await _refresh_if_unlocked(context, grant_id)
        if token is not None:
            return token
        if not waited:  # counted once per refresh, however long it waits
            context.metrics.refresh_lock_waits.inc()
            waited = True
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
        locked = await try_lock_grant(session, grant_id)
        if locked is None:
            _usable(await load_grant(session, grant_id))  # gone or revoked: raises
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
    refreshes = context.metrics.refreshes
    try:
        token = await context.tailscale.refresh(SecretStr(refresh))
    except InvalidGrant:
        refreshes.labels("needs_consent").inc()
        return None
    except Exception:
        refreshes.labels("failed").inc()
        raise
    refreshes.labels("refreshed").inc()
    return token


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
