"""Minting a user-owned key under a reusable grant, at claim time.

A mint is a non-idempotent upstream POST, so its intent (``mint_started_at``) commits before
the call and its outcome after; a mint whose outcome is unknown stays pending for the
reconciler. The request may change while the call is out (cancelled, offboarded): the outcome
is recorded only if the request is still the one that asked, and otherwise the key is never
handed out. Keys are minted with a short expiry by default, so one nobody received dies soon.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NoReturn

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.events import ORIGIN_API, Actor, Event, Target, format_time
from service.db import transaction
from service.grants.refresh import access_token_for, fresh_access_token
from service.grants.store import load_grant, mark_identity_verified, stamp_last_used
from service.models import ConsentGrant, ProvisioningRequest
from service.provisioning.create import DEFAULT_CONSENT_TTL_SECONDS, consent_url, issue_consent_link
from service.provisioning.first_key import KeyCheck, check_minted_key, key_check_for
from service.provisioning.handout import claim_answer
from service.provisioning.orphans import delete_dropped_key
from service.provisioning.schemas import ClaimOut
from service.provisioning.status import RequestStatus
from service.provisioning.store import load_request
from service.provisioning.store.claims import MintedKeyClaim, claim_with_minted_key
from service.provisioning.transitions import (
    announce_status_change,
    change_status,
    record_request_failure,
)
from service.state import AppContext
from service.tailscale.client import MintedKey, OutcomeUnknown, TailscaleError
from service.web.errors import ConsentRequired, GrantRevoked, NotReady

MINT_DESCRIPTION_PREFIX = "tsprov"
# A grant's last_used_at is kept to this resolution (see _note_grant_use).
GRANT_USE_RESOLUTION = timedelta(minutes=1)


def mint_description(request_id: uuid.UUID) -> str:
    """Letters, digits and hyphens only, as Tailscale requires; names the request."""
    return f"{MINT_DESCRIPTION_PREFIX}-{request_id.hex[:16]}"


@dataclass(frozen=True)
class MintPlan:
    """What a claim's locked transaction read for the mint, committed with its intent."""

    request: ProvisioningRequest
    grant_id: uuid.UUID
    started: datetime
    check: KeyCheck
    # None when the token is due (or the grant unusable): access_token_for settles it.
    access_token: SecretStr | None
    grant_last_used_at: datetime | None


async def plan_mint(
    context: AppContext, session: AsyncSession, request: ProvisioningRequest, grant: ConsentGrant
) -> MintPlan:
    """Read, in the claim's transaction, what the mint needs; ``mint_started_at`` is set."""
    if request.mint_started_at is None:
        raise ValueError("plan_mint needs the mint's intent set on the request")
    return MintPlan(
        request=request,
        grant_id=grant.id,
        started=request.mint_started_at,
        check=await key_check_for(session, context.settings, request, grant),
        access_token=fresh_access_token(context.require_key_ring(), grant),
        grant_last_used_at=grant.last_used_at,
    )


async def mint_and_hand_out(context: AppContext, actor: Actor, plan: MintPlan) -> ClaimOut:
    """Mint the request's key (its intent, ``plan.started``, is committed); record the outcome."""
    request, grant_id = plan.request, plan.grant_id
    mint = _Mint(request.id, plan.started)
    try:
        access_token = plan.access_token or await access_token_for(context, grant_id)
        minted = await context.tailscale.create_auth_key(
            access_token,
            reusable=False,
            ephemeral=request.ephemeral,
            preauthorized=request.preauthorized,
            tags=list(request.tags),
            expiry_seconds=request.expiry_seconds or context.settings.minted_key_expiry_seconds,
            description=mint_description(request.id),
        )
    except (OutcomeUnknown, asyncio.CancelledError):
        # Tailscale may have made the key: mint_started_at stays set for the reconciler.
        raise
    except ConsentRequired:
        await _back_to_consent(context, actor, mint)
    except GrantRevoked:
        await _cancel_for_revoked_grant(context, actor, mint)
        raise
    except TailscaleError as exc:
        await _clear_mint(context, actor, mint, refusal=f"claim failed upstream: {exc.code}")
        raise
    except BaseException:
        await _clear_mint(context, actor, mint)
        raise
    confirmed = None
    if plan.check.needed:
        confirmed = await check_minted_key(
            context, actor, request.id, plan.check, minted, access_token, mint.is_current
        )
    return await _record_minted(context, actor, plan, minted, confirmed, access_token)


@dataclass(frozen=True)
class _Mint:
    request_id: uuid.UUID
    started: datetime

    def is_current(self, request: ProvisioningRequest) -> bool:
        """Still ready and still this claim's mint: not cancelled, nor settled and retaken."""
        return request.status == RequestStatus.READY and request.mint_started_at == self.started


async def _record_minted(
    context: AppContext,
    actor: Actor,
    plan: MintPlan,
    minted: MintedKey,
    confirmed: str | None,
    access_token: SecretStr,
) -> ClaimOut:
    mint = _Mint(plan.request.id, plan.started)
    claim = claim_with_minted_key(plan.request, plan.started, minted.key_id, minted.expires)
    async with transaction(context.sessions) as session:
        claimed = await _hand_out(session, claim, actor, minted)
        if claimed:
            request = claim.request
            await _note_grant_use(session, plan, confirmed)
        else:
            request = await load_request(session, mint.request_id, lock=True)
            # Nobody will receive it: deleted at Tailscale, and what became of it audited.
            fate = await delete_dropped_key(context, minted.key_id, access_token)
            await _discard_minted(session, request, actor, minted, fate)
    if not claimed:
        raise NotReady(
            "The request changed while its key was minted; the key was not handed out.",
            extra={"request_status": request.status},
        )
    return claim_answer(minted.key.get_secret_value(), minted.expires, request.hostname)


async def _note_grant_use(session: AsyncSession, plan: MintPlan, confirmed: str | None) -> None:
    """The grant gave a key: its confirmed login, and ``last_used_at`` to the minute.

    Writing the time at every claim would lock the grant's row (which a refresh holds) once
    per claim; a time less than GRANT_USE_RESOLUTION old is left as it is.
    """
    now = datetime.now(UTC)
    if confirmed:
        grant = await load_grant(session, plan.grant_id)
        if grant is not None:
            mark_identity_verified(grant, confirmed)
            grant.last_used_at = now
        return
    last = plan.grant_last_used_at
    if last is None or now - last >= GRANT_USE_RESOLUTION:
        await stamp_last_used(session, plan.grant_id, now)


async def _hand_out(
    session: AsyncSession, claim: MintedKeyClaim, actor: Actor, minted: MintedKey
) -> bool:
    """Write the claim with the key's creation and the move to ``claimed``, in one statement;
    False, with nothing written, when the request is no longer the mint's."""
    request = claim.request
    key_created = Event(
        origin=ORIGIN_API,
        actor=actor,
        target=Target(id=minted.key_id, name=request.user_id, type="API_KEY"),
        action="CREATE",
        new={"expiresAt": format_time(minted.expires) if minted.expires else None},
        details=f"minted for request {request.id}",
        user_id=request.user_id,
    )
    return await announce_status_change(
        session,
        request,
        RequestStatus.READY,
        actor=actor,
        origin=ORIGIN_API,
        along_with=key_created,
        written_with=claim.along,
    )


async def _discard_minted(
    session: AsyncSession,
    request: ProvisioningRequest,
    actor: Actor,
    minted: MintedKey,
    fate: str,
) -> None:
    """Cancelled, offboarded or settled meanwhile: audit the key that nobody will receive."""
    await record_request_failure(
        session,
        request,
        actor=actor,
        origin=ORIGIN_API,
        error=f"request became {request.status} during the mint; key {minted.key_id} "
        f"was not handed out; {fate}",
    )


async def _clear_mint(context: AppContext, actor: Actor, mint: _Mint, refusal: str = "") -> None:
    """The mint did not happen: the request may be claimed again; an upstream "no" is audited."""
    async with transaction(context.sessions) as session:
        request = await load_request(session, mint.request_id, lock=True)
        if mint.is_current(request):
            request.mint_started_at = None
        if refusal:
            await record_request_failure(
                session, request, actor=actor, origin=ORIGIN_API, error=refusal
            )


async def _cancel_for_revoked_grant(context: AppContext, actor: Actor, mint: _Mint) -> None:
    """Revoked (an offboarding raced this request's creation): the request cannot proceed."""
    async with transaction(context.sessions) as session:
        request = await load_request(session, mint.request_id, lock=True)
        if mint.is_current(request):
            request.mint_started_at = None
            await change_status(
                session,
                request,
                RequestStatus.CANCELLED,
                actor=actor,
                origin=ORIGIN_API,
                details="the user's grant was revoked",
            )


async def _back_to_consent(context: AppContext, actor: Actor, mint: _Mint) -> NoReturn:
    """The grant needs consent again: a still-ready request waits for it, with a fresh link."""
    key_ring = context.require_key_ring()
    async with transaction(context.sessions) as session:
        request = await load_request(session, mint.request_id, lock=True)
        if not mint.is_current(request):
            status = request.status
        else:
            status = RequestStatus.AWAITING_CONSENT
            request.mint_started_at = None
            request.grant_id = None
            issue_consent_link(request, key_ring, ttl=DEFAULT_CONSENT_TTL_SECONDS)
            await change_status(
                session,
                request,
                status,
                actor=actor,
                origin=ORIGIN_API,
                details="the grant needs consent again",
            )
        link = consent_url(context.settings, key_ring, request)
    if status != RequestStatus.AWAITING_CONSENT:
        raise NotReady("The request is no longer ready.", extra={"request_status": status})
    raise ConsentRequired(
        "The user must consent again; send them the consent_url.", extra={"consent_url": link}
    )
