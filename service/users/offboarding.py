"""Offboarding a user, and the devices tsprov provisioned for them."""

from __future__ import annotations

import dataclasses
import logging

from service.audit.events import ORIGIN_API, Actor, Target, record_event
from service.db import transaction
from service.grants.status import GrantStatus
from service.grants.store import lock_live_grants, set_grant_status
from service.models import ProvisioningRequest
from service.provisioning.failures import USER_OFFBOARDED
from service.provisioning.status import RequestStatus
from service.provisioning.store import lock_open_requests, provisioned_devices
from service.provisioning.transitions import change_status
from service.state import AppContext
from service.tailscale.client import Device, TailscaleError
from service.users.schemas import DeviceOut, DevicePage, OffboardOut
from service.web.errors import NotFound, ServiceUnavailable

log = logging.getLogger("tsprov.offboarding")


async def offboard_user(
    context: AppContext,
    actor: Actor,
    user_id: str,
    *,
    delete_devices: bool,
    origin: str = ORIGIN_API,
) -> OffboardOut:
    """Revoke every grant (secrets wiped), cancel open requests, optionally delete devices.

    The local revocation commits first, in one transaction: a device deletion that fails at
    Tailscale afterwards must not leave a grant that could still mint keys.
    """
    async with transaction(context.sessions) as session:
        # Every row lock first, requests before grants as claims take them, and only then
        # the audit appends: the chain lock must never be held while waiting for a row.
        requests = await lock_open_requests(session, user_id)
        grants = await lock_live_grants(session, user_id)
        for request in requests:
            request.failure_reason = USER_OFFBOARDED
            await change_status(
                session,
                request,
                RequestStatus.CANCELLED,
                actor=actor,
                origin=origin,
                details="user offboarded",
            )
        for grant in grants:
            await set_grant_status(
                session, grant, GrantStatus.REVOKED, actor=actor, origin=origin, action="REVOKE"
            )
        devices = await provisioned_devices(session, user_id) if delete_devices else []
    deleted, kept = [], []
    for device in devices:
        node_id = device.device_node_id or ""
        if await _try_delete(context, actor, user_id, node_id, device.device_name, origin):
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


async def _try_delete(
    context: AppContext, actor: Actor, user_id: str, node_id: str, name: str | None, origin: str
) -> bool:
    """One device that Tailscale will not delete must not lose the offboarding summary."""
    try:
        return await delete_device(context, actor, user_id, node_id, name, origin)
    except TailscaleError as exc:
        log.warning("device %s not deleted during offboarding: %s", node_id, exc.code)
        return False


async def delete_device(
    context: AppContext,
    actor: Actor,
    user_id: str,
    node_id: str,
    name: str | None,
    origin: str = ORIGIN_API,
) -> bool:
    """Delete at Tailscale through the observer; audited as NODE.DELETE."""
    if not context.tailscale.has_observer:
        return False
    existed = await context.tailscale.delete_device(node_id)
    async with transaction(context.sessions) as session:
        await record_event(
            session,
            origin=origin,
            actor=actor,
            target=Target(id=node_id, name=name or "", type="NODE"),
            action="DELETE",
            details="" if existed else "already gone at Tailscale",
            user_id=user_id,
        )
    return True


async def list_user_devices(context: AppContext, user_id: str) -> DevicePage:
    """Devices provisioned for the user, with Tailscale's live view when an observer is set."""
    # The rows are read and the session closed before Tailscale is asked: no connection
    # waits on an upstream call.
    async with context.sessions() as session:
        rows = await provisioned_devices(session, user_id)
    live = {}
    if rows and context.tailscale.has_observer:
        live = {device.node_id: device for device in await context.tailscale.list_devices()}
    return DevicePage(items=[_device_out(row, live.get(row.device_node_id or "")) for row in rows])


def _device_out(row: ProvisioningRequest, live: Device | None) -> DeviceOut:
    return DeviceOut(
        node_id=row.device_node_id or "",
        name=row.device_name,
        hostname=row.hostname,
        user=row.device_user,
        joined_at=row.device_joined_at,
        request_id=row.id,
        live=dataclasses.asdict(live) if live else None,
    )


async def remove_user_device(context: AppContext, actor: Actor, user_id: str, node_id: str) -> None:
    """Delete one device tsprov provisioned for the user, at Tailscale."""
    async with context.sessions() as session:
        rows = {row.device_node_id: row for row in await provisioned_devices(session, user_id)}
    if node_id not in rows:
        raise NotFound("tsprov provisioned no such device for this user.")
    if not context.tailscale.has_observer:
        raise ServiceUnavailable("Deleting devices needs an observer credential.")
    await delete_device(context, actor, user_id, node_id, rows[node_id].device_name)
