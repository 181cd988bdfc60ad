"""Offboarding a user, and the devices tsprov provisioned for them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit import ORIGIN_API, Actor, Target, record_event
from service.context import AppContext
from service.db import transaction
from service.grants import set_grant_status
from service.models import ConsentGrant, ProvisioningRequest
from service.provisioning import OPEN_STATUSES, change_status
from service.schemas import OffboardOut


async def provisioned_devices(session: AsyncSession, user_id: str) -> list[ProvisioningRequest]:
    query = (
        select(ProvisioningRequest)
        .where(
            ProvisioningRequest.user_id == user_id, ProvisioningRequest.device_node_id.is_not(None)
        )
        .order_by(ProvisioningRequest.device_joined_at.desc())
    )
    return list(await session.scalars(query))


async def offboard_user(
    context: AppContext, actor: Actor, user_id: str, *, delete_devices: bool
) -> OffboardOut:
    """Revoke every grant (secrets wiped), cancel open requests, optionally delete devices."""
    async with transaction(context.sessions) as session:
        grants = list(
            await session.scalars(
                select(ConsentGrant)
                .where(
                    ConsentGrant.user_id == user_id,
                    ConsentGrant.status.in_(("active", "needs_consent")),
                )
                .with_for_update()
            )
        )
        for grant in grants:
            await set_grant_status(
                session, grant, "revoked", actor=actor, origin=ORIGIN_API, action="REVOKE"
            )
        requests = list(
            await session.scalars(
                select(ProvisioningRequest)
                .where(
                    ProvisioningRequest.user_id == user_id,
                    ProvisioningRequest.status.in_(OPEN_STATUSES),
                )
                .with_for_update()
            )
        )
        for request in requests:
            await change_status(
                session,
                request,
                "cancelled",
                actor=actor,
                origin=ORIGIN_API,
                details="user offboarded",
            )
        devices = await provisioned_devices(session, user_id) if delete_devices else []
    deleted, kept = [], []
    for device in devices:
        node_id = device.device_node_id or ""
        if await delete_device(context, actor, user_id, node_id, device.device_name):
            deleted.append(node_id)
        else:
            kept.append(node_id)
    return OffboardOut(
        user_id=user_id,
        grants_revoked=len(grants),
        requests_cancelled=len(requests),
        devices_deleted=deleted,
        devices_not_deleted=kept,
    )


async def delete_device(
    context: AppContext, actor: Actor, user_id: str, node_id: str, name: str | None
) -> bool:
    """Delete at Tailscale through the observer; audited as NODE.DELETE."""
    if not context.tailscale.has_observer:
        return False
    existed = await context.tailscale.delete_device(node_id)
    async with transaction(context.sessions) as session:
        await record_event(
            session,
            origin=ORIGIN_API,
            actor=actor,
            target=Target(id=node_id, name=name or "", type="NODE"),
            action="DELETE",
            details="" if existed else "already gone at Tailscale",
            user_id=user_id,
        )
    return True
