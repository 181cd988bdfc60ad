"""Claiming a ready request: the auth key is handed out exactly once.

One-time grants already hold their key; reusable grants mint one at claim time. A mint is a
non-idempotent upstream POST, so its intent (``mint_started_at``) commits before the call and
its outcome after; a mint whose outcome is unknown stays pending for the reconciler.
"""

from __future__ import annotations

import asyncio
import shlex
import uuid
from datetime import UTC, datetime
from typing import NoReturn

from sqlalchemy.ext.asyncio import AsyncSession

from service.audit import ORIGIN_API, Actor, Target, format_time, record_event
from service.context import AppContext
from service.db import transaction
from service.errors import AlreadyClaimed, ConsentRequired, IdempotencyInFlight, NotReady
from service.grants import access_token_for, set_grant_status, token_context
from service.models import ConsentGrant, ProvisioningRequest
from service.provisioning import change_status, consent_url, issue_consent_link, load_request
from service.schemas import ClaimOut
from service.tailscale import MintedKey, OutcomeUnknown, TailscaleError

MINT_DESCRIPTION_PREFIX = "tsprov"


def tailscale_up_line(auth_key: str, hostname: str | None) -> str:
    parts = ["tailscale", "up", f"--auth-key={auth_key}"]
    if hostname:
        parts.append(f"--hostname={hostname}")
    return " ".join(shlex.quote(part) for part in parts)


def mint_description(request_id: uuid.UUID) -> str:
    """Letters, digits and hyphens only, as Tailscale requires; names the request."""
    return f"{MINT_DESCRIPTION_PREFIX}-{request_id.hex[:16]}"


def _check_claimable(request: ProvisioningRequest) -> None:
    if request.status in ("claimed", "joined"):
        raise AlreadyClaimed("This request's key was already claimed.")
    if request.status != "ready":
        raise NotReady(
            f"The request is {request.status}, not ready.",
            extra={"request_status": request.status},
        )


async def claim_provisioning_request(
    context: AppContext, actor: Actor, request_id: uuid.UUID
) -> ClaimOut:
    async with transaction(context.sessions) as session:
        request = await load_request(session, request_id, lock=True)
        _check_claimable(request)
        grant = await session.get(ConsentGrant, request.grant_id) if request.grant_id else None
        if grant is None:
            raise NotReady("The request has no grant.", extra={"request_status": request.status})
        if grant.mode == "once":
            return await _hand_out_one_time_key(context, session, request, grant, actor)
        if request.mint_started_at is not None:
            raise IdempotencyInFlight("A claim of this request is already in progress.")
        request.mint_started_at = datetime.now(UTC)
        grant_id = grant.id
    return await _mint_and_hand_out(context, actor, request_id, grant_id)


async def _hand_out_one_time_key(
    context: AppContext,
    session: AsyncSession,
    request: ProvisioningRequest,
    grant: ConsentGrant,
    actor: Actor,
) -> ClaimOut:
    if grant.token_ciphertext is None or grant.status != "active":
        raise NotReady("The one-time key is gone.", extra={"request_status": request.status})
    key = context.require_key_ring().decrypt_text(
        grant.token_ciphertext, token_context(grant, "token")
    )
    request.claimed_at = grant.last_used_at = datetime.now(UTC)
    await set_grant_status(session, grant, "used", actor=actor, origin=ORIGIN_API, action="UPDATE")
    await change_status(session, request, "claimed", actor=actor, origin=ORIGIN_API)
    return ClaimOut(
        auth_key=key,
        expires_at=request.key_expires_at,
        tailscale_up=tailscale_up_line(key, request.hostname),
    )


async def _mint_and_hand_out(
    context: AppContext, actor: Actor, request_id: uuid.UUID, grant_id: uuid.UUID
) -> ClaimOut:
    async with transaction(context.sessions) as session:
        request = await load_request(session, request_id)
    try:
        access_token = await access_token_for(context, grant_id)
        minted = await context.tailscale.create_auth_key(
            access_token,
            reusable=False,
            ephemeral=request.ephemeral,
            preauthorized=request.preauthorized,
            tags=list(request.tags),
            expiry_seconds=request.expiry_seconds,
            description=mint_description(request.id),
        )
    except (OutcomeUnknown, asyncio.CancelledError):
        # Tailscale may have made the key: mint_started_at stays set for the reconciler.
        raise
    except ConsentRequired:
        await _back_to_consent(context, actor, request_id)  # raises with a fresh link
    except TailscaleError as exc:
        await _clear_mint(context, request_id, actor, refusal=exc.code)
        raise
    except BaseException:
        await _clear_mint(context, request_id, actor)
        raise
    return await _record_minted(context, actor, request_id, minted)


async def _record_minted(
    context: AppContext, actor: Actor, request_id: uuid.UUID, minted: MintedKey
) -> ClaimOut:
    async with transaction(context.sessions) as session:
        request = await load_request(session, request_id, lock=True)
        request.key_id = minted.key_id
        request.key_expires_at = minted.expires
        request.mint_started_at = None
        request.claimed_at = datetime.now(UTC)
        target = Target(id=minted.key_id, name=request.user_id, type="API_KEY")
        await record_event(
            session,
            origin=ORIGIN_API,
            actor=actor,
            target=target,
            action="CREATE",
            new={"expiresAt": format_time(minted.expires) if minted.expires else None},
            details=f"minted for request {request.id}",
            user_id=request.user_id,
        )
        await change_status(session, request, "claimed", actor=actor, origin=ORIGIN_API)
    key = minted.key.get_secret_value()
    return ClaimOut(
        auth_key=key,
        expires_at=minted.expires,
        tailscale_up=tailscale_up_line(key, request.hostname),
    )


async def _clear_mint(
    context: AppContext, request_id: uuid.UUID, actor: Actor, refusal: str = ""
) -> None:
    """The mint did not happen: the request may be claimed again; an upstream "no" is audited."""
    async with transaction(context.sessions) as session:
        request = await load_request(session, request_id, lock=True)
        request.mint_started_at = None
        if refusal:
            target = Target(id=str(request.id), name=request.user_id, type="FAILED_REQUEST")
            await record_event(
                session,
                origin=ORIGIN_API,
                actor=actor,
                target=target,
                action="CREATE",
                error=f"key mint failed upstream: {refusal}",
                user_id=request.user_id,
            )


async def _back_to_consent(context: AppContext, actor: Actor, request_id: uuid.UUID) -> NoReturn:
    """The grant needs consent again: the request waits for it, with a fresh link."""
    key_ring = context.require_key_ring()
    async with transaction(context.sessions) as session:
        request = await load_request(session, request_id, lock=True)
        request.mint_started_at = None
        request.grant_id = None
        issue_consent_link(request, key_ring, ttl=3600)
        await change_status(
            session,
            request,
            "awaiting_consent",
            actor=actor,
            origin=ORIGIN_API,
            details="the grant needs consent again",
        )
        link = consent_url(context.settings, key_ring, request)
    raise ConsentRequired(
        "The user must consent again; send them the consent_url.", extra={"consent_url": link}
    )
