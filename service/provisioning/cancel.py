"""Cancelling a request a caller no longer needs."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.audit.events import ORIGIN_API, Actor
from service.db import transaction
from service.grants.status import GrantMode, GrantStatus
from service.grants.store import load_grant, set_grant_status
from service.models import ProvisioningRequest
from service.provisioning.status import OPEN_STATUSES, RequestStatus
from service.provisioning.store import load_request
from service.provisioning.transitions import change_status
from service.web.errors import Conflict


async def cancel_provisioning_request(
    session: AsyncSession,
    request: ProvisioningRequest,
    actor: Actor,
    *,
    origin: str = ORIGIN_API,
    reason: str | None = None,
) -> None:
    """Cancel an open request; a one-time key it held is wiped with its grant.

    ``reason`` is the failure code the caller reads (default: plain ``cancelled``).
    """
    if request.status == RequestStatus.CANCELLED:
        return
    if request.status not in OPEN_STATUSES:
        raise Conflict(f"The request is already {request.status}.")
    grant = await load_grant(session, request.grant_id)
    if grant is not None and grant.mode == GrantMode.ONCE and grant.status == GrantStatus.ACTIVE:
        await set_grant_status(
            session, grant, GrantStatus.REVOKED, actor=actor, origin=origin, action="REVOKE"
        )
    if reason is not None:
        request.failure_reason = reason
    await change_status(session, request, RequestStatus.CANCELLED, actor=actor, origin=origin)


async def cancel_request(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    request_id: uuid.UUID,
    *,
    origin: str = ORIGIN_API,
    reason: str | None = None,
    only_from: RequestStatus | None = None,
) -> None:
    """Cancel under the row lock, in a transaction of its own (the route has no session).

    ``only_from``: the status the request must still have under the lock (a person
    declining a request may have consented to it in another tab meanwhile).
    """
    async with transaction(sessions) as session:
        request = await load_request(session, request_id, lock=True)
        if only_from is not None and request.status != only_from:
            raise Conflict(f"The request is already {request.status}.")
        await cancel_provisioning_request(session, request, actor, origin=origin, reason=reason)
