"""What a status change becomes as a webhook event: ids, the user and the status, never a
secret. Called from the one place each kind of status changes."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from service.grants.status import GrantStatus
from service.models import ConsentGrant, ProvisioningRequest
from service.provisioning.status import RequestStatus
from service.webhooks.outbox import publish_event
from service.webhooks.status import WebhookEventType

REQUEST_EVENTS = {
    RequestStatus.READY: WebhookEventType.REQUEST_READY,
    RequestStatus.CLAIMED: WebhookEventType.REQUEST_CLAIMED,
    RequestStatus.JOINED: WebhookEventType.REQUEST_JOINED,
    RequestStatus.FAILED: WebhookEventType.REQUEST_FAILED,
    RequestStatus.EXPIRED: WebhookEventType.REQUEST_EXPIRED,
    RequestStatus.CANCELLED: WebhookEventType.REQUEST_CANCELLED,
}
GRANT_EVENTS = {
    GrantStatus.REVOKED: WebhookEventType.GRANT_REVOKED,
    GrantStatus.NEEDS_CONSENT: WebhookEventType.GRANT_NEEDS_CONSENT,
}


def request_event_data(request: ProvisioningRequest) -> dict[str, Any]:
    data: dict[str, Any] = {
        "provisioning_request_id": str(request.id),
        "user_id": request.user_id,
        "status": str(request.status),
        "grant_id": str(request.grant_id) if request.grant_id else None,
    }
    if request.device_node_id:
        data["device"] = {"node_id": request.device_node_id, "name": request.device_name}
    if request.failure_reason:
        data["failure_reason"] = request.failure_reason
    return data


async def publish_request_change(session: AsyncSession, request: ProvisioningRequest) -> None:
    """Queue the event for the request's new status, if that status has one."""
    event_type = REQUEST_EVENTS.get(RequestStatus(request.status))
    if event_type is not None:
        await publish_event(session, event_type, request_event_data(request))


async def publish_grant_change(session: AsyncSession, grant: ConsentGrant) -> None:
    """Queue the event for the grant's new status, if that status has one."""
    event_type = GRANT_EVENTS.get(GrantStatus(grant.status))
    if event_type is not None:
        data = {"grant_id": str(grant.id), "user_id": grant.user_id, "status": str(grant.status)}
        await publish_event(session, event_type, data)
