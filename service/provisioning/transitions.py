"""Moving a request between statuses: every move wipes what is no longer needed, is audited
and wakes the long-polls waiting on it (a trigger on the table sends that NOTIFY, see
notify.py). These functions take a session and only flush."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.events import Actor, Event, Target, record_event, record_events
from service.audit.store import Along
from service.models import ProvisioningRequest
from service.provisioning.status import RequestStatus
from service.webhooks.publish import publish_request_change


def request_target(request: ProvisioningRequest, prop: str = "") -> Target:
    return Target(
        id=str(request.id), name=request.user_id, type="PROVISIONING_REQUEST", property=prop
    )


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
    if new_status != RequestStatus.AWAITING_CONSENT:
        # The hash stays, so an old link gets "already used" rather than "unknown".
        request.consent_token_ciphertext = None
    await session.flush()
    await announce_status_change(
        session, request, old_status, actor=actor, origin=origin, details=details, error=error
    )


async def announce_status_change(
    session: AsyncSession,
    request: ProvisioningRequest,
    old_status: RequestStatus,
    *,
    actor: Actor,
    origin: str,
    details: str = "",
    error: str = "",
    along_with: Event | None = None,
    written_with: Along | None = None,
) -> bool:
    """What follows a status change: its audit event and its webhook event (the row's trigger
    queues the long-polls' wake-up). ``along_with`` is an event of the same step recorded
    just before it, in the same statement.

    The change is written to the row already, or by ``written_with``, sent in the events'
    statement. When that one is required and writes nothing, nothing is announced: False.
    """
    status_change = Event(
        origin=origin,
        actor=actor,
        target=request_target(request, "STATUS"),
        action="UPDATE",
        old=old_status,
        new=request.status,
        details=details,
        error=error,
        user_id=request.user_id,
    )
    events = (e for e in (along_with, status_change) if e is not None)
    if not await record_events(session, *events, along=written_with):
        return False
    await publish_request_change(session, request)
    return True
