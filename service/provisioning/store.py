"""The provisioning-request state machine and its audit trail."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.audit.events import ORIGIN_API, Actor, Target, format_optional_time, record_event
from service.crypto.digests import lookup_digest
from service.crypto.keyring import KeyRing
from service.crypto.sealed import consent_token_context
from service.db import transaction
from service.grants.status import GrantMode, GrantStatus
from service.grants.store import find_live_reusable_grant, set_grant_status
from service.models import ConsentGrant, ProvisioningRequest
from service.provisioning.notify import notify_request_changed
from service.provisioning.schemas import ProvisioningRequestCreate
from service.provisioning.status import OPEN_STATUSES, RequestStatus
from service.settings import Settings
from service.users.store import ensure_user
from service.web.errors import Conflict, NotFound, ValidationFailed

# A fresh consent link asked for after the request was made (a grant that needs consent
# again) gets the window a new request gets by default.
DEFAULT_CONSENT_TTL_SECONDS = 3600
# What a caller's body sets on the request as it is (tags are copied to a list apart).
REQUEST_FIELDS = {
    "hostname",
    "description",
    "return_to",
    "ephemeral",
    "preauthorized",
    "expiry_seconds",
}


def request_target(request: ProvisioningRequest, prop: str = "") -> Target:
    return Target(
        id=str(request.id), name=request.user_id, type="PROVISIONING_REQUEST", property=prop
    )


def return_to_allowed(settings: Settings, path: str | None) -> bool:
    """Literal prefix match on a local path; anything that could leave the site is refused."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return False
    return any(path.startswith(prefix) for prefix in settings.return_to_allowlist)


def issue_consent_link(request: ProvisioningRequest, key_ring: KeyRing, ttl: int) -> None:
    """A fresh unguessable consent token; only its hash and a sealed copy are kept."""
    token = secrets.token_urlsafe(32)
    request.consent_token_hash = lookup_digest(token)
    request.consent_token_ciphertext = key_ring.encrypt_text(token, consent_token_context(request))
    request.consent_expires_at = datetime.now(UTC) + timedelta(seconds=ttl)


def consent_url(settings: Settings, key_ring: KeyRing, request: ProvisioningRequest) -> str | None:
    if request.status != RequestStatus.AWAITING_CONSENT or request.consent_token_ciphertext is None:
        return None
    token = key_ring.decrypt_text(request.consent_token_ciphertext, consent_token_context(request))
    return f"{settings.public_url}/authorize?request={token}"


async def create_provisioning_request(
    session: AsyncSession,
    settings: Settings,
    key_ring: KeyRing,
    actor: Actor,
    user_id: str,
    body: ProvisioningRequestCreate,
) -> ProvisioningRequest:
    """``ready`` at once under a live reusable grant, otherwise awaiting consent."""
    if body.return_to is not None and not return_to_allowed(settings, body.return_to):
        raise ValidationFailed("return_to is not on the allowlist.")
    await ensure_user(session, actor, user_id, origin=ORIGIN_API)
    grant = await find_live_reusable_grant(session, user_id)
    request = ProvisioningRequest(
        id=uuid.uuid4(),
        user_id=user_id,
        status=RequestStatus.READY if grant else RequestStatus.AWAITING_CONSENT,
        grant_id=grant.id if grant else None,
        created_by=actor.login_name,
        tags=list(body.tags),
        **body.model_dump(include=REQUEST_FIELDS),
    )
    if grant is None:
        issue_consent_link(request, key_ring, body.consent_ttl_seconds)
    session.add(request)
    await session.flush()
    consent_expires = format_optional_time(request.consent_expires_at)
    new = {"status": request.status, "consentExpiresAt": consent_expires}
    await record_event(
        session,
        origin=ORIGIN_API,
        actor=actor,
        target=request_target(request),
        action="CREATE",
        new=new,
        user_id=user_id,
    )
    return request


async def record_request_failure(
    session: AsyncSession,
    request: ProvisioningRequest,
    *,
    actor: Actor,
    origin: str,
    error: str,
    action: str = "CREATE",
) -> None:
    """A refused or failed step of this request: a FAILED_REQUEST event naming it."""
    await record_event(
        session,
        origin=origin,
        actor=actor,
        target=Target(id=str(request.id), name=request.user_id, type="FAILED_REQUEST"),
        action=action,
        error=error,
        user_id=request.user_id,
    )


async def change_status(
    session: AsyncSession,
    request: ProvisioningRequest,
    new_status: RequestStatus,
    *,
    actor: Actor,
    origin: str,
    details: str = "",
    error: str = "",
) -> None:
    """Move a request, wipe what it no longer needs, audit it and wake long-polls."""
    old_status = request.status
    request.status = new_status
    request.updated_at = datetime.now(UTC)
    if new_status != "awaiting_consent":
        # The hash stays, so an old link gets "already used" rather than "unknown".
        request.consent_token_ciphertext = None
    await session.flush()
    await record_event(
        session,
        origin=origin,
        actor=actor,
        target=request_target(request, "STATUS"),
        action="UPDATE",
        old=old_status,
        new=new_status,
        details=details,
        error=error,
        user_id=request.user_id,
    )
    await notify_request_changed(session, request.id)


async def load_request(
    session: AsyncSession, request_id: uuid.UUID, *, lock: bool = False
) -> ProvisioningRequest:
    query = select(ProvisioningRequest).where(ProvisioningRequest.id == request_id)
    if lock:
        query = query.with_for_update()
    request = await session.scalar(query)
    if request is None:
        raise NotFound("No such provisioning request.")
    return request


async def load_grant(session: AsyncSession, request: ProvisioningRequest) -> ConsentGrant | None:
    if request.grant_id is None:
        return None
    return await session.get(ConsentGrant, request.grant_id)


async def cancel_provisioning_request(
    session: AsyncSession, request: ProvisioningRequest, actor: Actor
) -> None:
    """Cancel an open request; a one-time key it held is wiped with its grant."""
    if request.status == "cancelled":
        return
    if request.status not in OPEN_STATUSES:
        raise Conflict(f"The request is already {request.status}.")
    grant = await load_grant(session, request)
    if grant is not None and grant.mode == GrantMode.ONCE and grant.status == "active":
        await set_grant_status(
            session, grant, GrantStatus.REVOKED, actor=actor, origin=ORIGIN_API, action="REVOKE"
        )
    await change_status(session, request, RequestStatus.CANCELLED, actor=actor, origin=ORIGIN_API)


async def request_owner(sessions: async_sessionmaker[AsyncSession], request_id: uuid.UUID) -> str:
    """The user a request is for, read before anything else so access can be checked first."""
    async with sessions() as session:
        user_id = await session.scalar(
            select(ProvisioningRequest.user_id).where(ProvisioningRequest.id == request_id)
        )
    if user_id is None:
        raise NotFound("No such provisioning request.")
    return user_id


async def cancel_request(
    sessions: async_sessionmaker[AsyncSession], actor: Actor, request_id: uuid.UUID
) -> None:
    async with transaction(sessions) as session:
        request = await load_request(session, request_id, lock=True)
        await cancel_provisioning_request(session, request, actor)
