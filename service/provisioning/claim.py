"""Claiming a ready request: the auth key is handed out exactly once.

One-time grants already hold their key; reusable grants mint one at claim time (minting.py).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.events import ORIGIN_API, Actor
from service.consent.identity import unverified_detail
from service.consent.mismatch import IDENTITY_MISMATCH, IDENTITY_UNVERIFIED
from service.crypto.sealed import token_context
from service.db import transaction
from service.grants.status import GrantMode, GrantStatus
from service.grants.store import load_grant, set_grant_status
from service.models import ConsentGrant, ProvisioningRequest
from service.provisioning.first_key import MISMATCH_DETAIL
from service.provisioning.handout import claim_answer
from service.provisioning.minting import mint_and_hand_out, plan_mint
from service.provisioning.schemas import ClaimOut
from service.provisioning.status import HANDED_OUT_STATUSES, RequestStatus
from service.provisioning.store import load_request
from service.provisioning.store.claims import mark_mint_started
from service.provisioning.transitions import change_status
from service.state import AppContext
from service.web.errors import AlreadyClaimed, IdentityMismatch, IdentityUnverified, NotReady


def _check_claimable(request: ProvisioningRequest) -> None:
    if request.status in HANDED_OUT_STATUSES:
        raise AlreadyClaimed("This request's key was already claimed.")
    status = {"request_status": request.status}
    if request.status == RequestStatus.FAILED and request.failure_reason == IDENTITY_MISMATCH:
        raise IdentityMismatch(MISMATCH_DETAIL, extra=status)
    if request.status == RequestStatus.FAILED and request.failure_reason == IDENTITY_UNVERIFIED:
        raise IdentityUnverified(unverified_detail(), extra=status)
    if request.status != RequestStatus.READY:
        raise NotReady(
            f"The request is {request.status}, not ready.",
            extra={"request_status": request.status},
        )


async def claim_provisioning_request(
    context: AppContext, actor: Actor, request_id: uuid.UUID
) -> ClaimOut:
    """Hand the request's key out exactly once.

    A one-time key goes out in one transaction with the status change. A reusable grant's
    mint commits its intent (``mint_started_at``) first, in its own transaction, so that a
    second claim sees the claim in progress and a crash is settled by the reconciler; that
    transaction also reads what the mint needs (the key check, a fresh access token).
    """
    async with context.claim_slots.held():
        return await _claim(context, actor, request_id)


async def _claim(context: AppContext, actor: Actor, request_id: uuid.UUID) -> ClaimOut:
    async with transaction(context.sessions) as session:
        # Most claims find a ready request with no mint in flight: one statement marks the
        # mint's intent. Any other request is read, locked, as it is: to say why it is not
        # claimable, or to claim it if it became claimable meanwhile.
        owner = context.notifier.mint_owner
        marked = await mark_mint_started(session, request_id, owner)
        if marked is not None:
            request, grant = marked
        else:
            request = await load_request(session, request_id, lock=True)
            _check_claimable(request)
            grant = await load_grant(session, request.grant_id)
        if grant is None:
            raise NotReady("The request has no grant.", extra={"request_status": request.status})
        if grant.mode == GrantMode.ONCE:
            if marked is not None:
                request.mint_started_at = request.mint_owner = None  # its key exists: no mint
            return await _hand_out_one_time_key(context, session, request, grant, actor)
        if marked is None:
            if request.mint_started_at is not None:
                raise AlreadyClaimed("This request is being claimed right now.")
            request.mint_started_at = datetime.now(UTC)
            request.mint_owner = owner
        plan = await plan_mint(context, session, request, grant)
    return await mint_and_hand_out(context, actor, plan)


async def _hand_out_one_time_key(
    context: AppContext,
    session: AsyncSession,
    request: ProvisioningRequest,
    grant: ConsentGrant,
    actor: Actor,
) -> ClaimOut:
    if grant.token_ciphertext is None or grant.status != GrantStatus.ACTIVE:
        raise NotReady("The one-time key is gone.", extra={"request_status": request.status})
    expires = request.key_expires_at
    if expires is not None and expires <= datetime.now(UTC):
        # The expiry job has not reached it yet; an expired key must not go out meanwhile.
        raise NotReady(
            "The one-time key has expired.", extra={"request_status": RequestStatus.EXPIRED}
        )
    key = context.require_key_ring().decrypt_text(
        grant.token_ciphertext, token_context(grant, "token")
    )
    request.claimed_at = grant.last_used_at = datetime.now(UTC)
    await set_grant_status(
        session, grant, GrantStatus.USED, actor=actor, origin=ORIGIN_API, action="UPDATE"
    )
    await change_status(session, request, RequestStatus.CLAIMED, actor=actor, origin=ORIGIN_API)
    return claim_answer(key, request.key_expires_at, request.hostname)
