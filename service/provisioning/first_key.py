"""The first key a reusable grant mints is checked before it leaves, as the consent itself
carried no key to check; once confirmed, the grant says so and later claims skip the check."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.events import ORIGIN_API, Actor
from service.consent.identity import (
    ConsentingIdentity,
    Verdict,
    consenting_identity,
    unverified_detail,
    verdict,
)
from service.consent.mismatch import (
    IDENTITY_UNVERIFIED,
    delete_leftovers,
    fail_for_identity,
    mismatch_error,
    tear_down_mismatch,
)
from service.db import transaction
from service.grants.store import load_grant
from service.models import ConsentGrant, ProvisioningRequest
from service.provisioning.store import load_request
from service.settings import IdentityBinding, Settings
from service.state import AppContext
from service.tailscale.client import MintedKey
from service.users.store import find_user
from service.web.errors import IdentityMismatch, IdentityUnverified

MISMATCH_DETAIL = (
    "The Tailscale login that consented is not the user's. No key was handed out, the grant "
    "was revoked, and the user's open requests need consent again."
)


@dataclass(frozen=True)
class KeyCheck:
    needed: bool
    expected: str | None = None


async def key_check_for(
    session: AsyncSession, settings: Settings, request: ProvisioningRequest, grant: ConsentGrant
) -> KeyCheck:
    """Whether this claim's key must be checked, and against which login."""
    if settings.binding == IdentityBinding.OFF:
        return KeyCheck(needed=False)
    if grant.identity_verified_at is not None:
        return KeyCheck(needed=False)
    user = await find_user(session, request.user_id)
    expected = settings.expected_login(request.user_id, user.tailscale_login if user else None)
    if expected is None and settings.binding == IdentityBinding.AFTER_JOIN:
        return KeyCheck(needed=False)
    return KeyCheck(needed=True, expected=expected)


async def check_minted_key(
    context: AppContext,
    actor: Actor,
    request_id: uuid.UUID,
    check: KeyCheck,
    minted: MintedKey,
    access_token: SecretStr,
    still_current: Callable[[ProvisioningRequest], bool],
) -> str | None:
    """The confirmed login, None when unconfirmed but allowed; raises when it must not go out."""
    identity = await consenting_identity(
        context.settings,
        context.tailscale,
        token_login=None,
        key_id=minted.key_id,
        key_user_id=minted.user_id,
    )
    found = verdict(check.expected, identity)
    if found == Verdict.CONFIRMED:
        return identity.login
    if found == Verdict.UNVERIFIED and context.settings.binding == IdentityBinding.AFTER_JOIN:
        return None
    user_id = await _refuse(context, actor, request_id, check, identity, still_current)
    await delete_leftovers(
        context,
        user_id=user_id,
        key_id=minted.key_id,
        access_token=access_token,
        actor=actor,
        origin=ORIGIN_API,
    )
    if found == Verdict.MISMATCH:
        raise IdentityMismatch(MISMATCH_DETAIL)
    raise IdentityUnverified(unverified_detail(identity.reasons()))


async def _refuse(
    context: AppContext,
    actor: Actor,
    request_id: uuid.UUID,
    check: KeyCheck,
    identity: ConsentingIdentity,
    still_current: Callable[[ProvisioningRequest], bool],
) -> str:
    """Fail the request (a mismatch also tears the grant down); returns the request's user."""
    key_ring = context.require_key_ring()
    got, expected = identity.login, check.expected
    async with transaction(context.sessions) as session:
        request = await load_request(session, request_id, lock=True)
        if not still_current(request):
            return request.user_id
        if got and expected:
            await tear_down_mismatch(
                session,
                key_ring,
                request=request,
                grant=await load_grant(session, request.grant_id),
                error=mismatch_error(got, expected),
                actor=actor,
                origin=ORIGIN_API,
            )
        else:
            error = f"{IDENTITY_UNVERIFIED}: {identity.reasons()}"
            await fail_for_identity(
                session,
                request,
                reason=IDENTITY_UNVERIFIED,
                error=error,
                actor=actor,
                origin=ORIGIN_API,
            )
    return request.user_id
