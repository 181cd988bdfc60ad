"""Offboarding a user, and the devices tsprov provisioned for them."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.events import ORIGIN_API, Actor, Target, record_event
from service.consent.mismatch import audit_deletions, delete_upstream
from service.crypto.sealed import token_context
from service.db import transaction
from service.grants.status import GrantMode, GrantStatus
from service.grants.store import auth_key_id, load_grant, lock_live_grants, set_grant_status
from service.models import ConsentGrant, ProvisioningRequest
from service.provisioning.failures import GRANT_WITHDRAWN, USER_OFFBOARDED
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
        ending = Ending(actor, origin, USER_OFFBOARDED, "user offboarded")
        await end_requests_and_grants(session, ending, requests, grants)
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


@dataclass(frozen=True)
class Ending:
    """Who ends a user's requests and grants, from where, and the failure code callers read."""

    actor: Actor
    origin: str
    reason: str
    details: str


async def end_requests_and_grants(
    session: AsyncSession,
    ending: Ending,
    requests: Sequence[ProvisioningRequest],
    grants: Sequence[ConsentGrant],
) -> None:
    """Cancel the (locked) requests and revoke the (locked) grants, wiping their secrets."""
    for request in requests:
        request.failure_reason = ending.reason
        await change_status(
            session,
            request,
            RequestStatus.CANCELLED,
            actor=ending.actor,
            origin=ending.origin,
            details=ending.details,
        )
    for grant in grants:
        await set_grant_status(
            session,
            grant,
            GrantStatus.REVOKED,
            actor=ending.actor,
            origin=ending.origin,
            action="REVOKE",
        )


async def withdraw_grant(
    context: AppContext, actor: Actor, grant_id: uuid.UUID, *, origin: str
) -> str:
    """One grant ended by the person who gave it; what happened at Tailscale, in words.

    Its secrets are wiped and the open requests relying on it cancelled (``grant_withdrawn``)
    in one transaction first. Then an unclaimed one-time key is deleted at Tailscale where a
    credential allows. Tailscale has no endpoint revoking an OAuth grant's tokens: once
    wiped here they are never used again, and the access token lapses within the hour.
    """
    async with transaction(context.sessions) as session:
        grant = await load_grant(session, grant_id)
        if grant is None:
            raise NotFound("No such grant.")
        # Requests first, as claims take them; only then the audit appends.
        open_requests = await lock_open_requests(session, grant.user_id)
        requests = [request for request in open_requests if request.grant_id == grant.id]
        live = [one for one in await lock_live_grants(session, grant.user_id) if one.id == grant.id]
        if not live:
            return "it had already ended; nothing was left to revoke"
        key_id = _unclaimed_key_id(context, live[0])
        ending = Ending(actor, origin, GRANT_WITHDRAWN, "the user withdrew the grant")
        await end_requests_and_grants(session, ending, requests, live)
    if key_id is None:
        return "its tokens were wiped; Tailscale has no way to revoke them sooner"
    deletions = await delete_upstream(context, user_id=grant.user_id, key_id=key_id)
    async with transaction(context.sessions) as session:
        why = "after the user withdrew the grant"
        await audit_deletions(session, deletions, actor=actor, origin=origin, why=why)
    return f"its unclaimed key: {deletions[0].note}"


def _unclaimed_key_id(context: AppContext, grant: ConsentGrant) -> str | None:
    """The id of a one-time grant's key nobody claimed yet: still live at Tailscale."""
    if grant.mode != GrantMode.ONCE or grant.status != GrantStatus.ACTIVE:
        return None
    if grant.token_ciphertext is None:
        return None
    key = context.require_key_ring().decrypt_text(
        grant.token_ciphertext, token_context(grant, "token")
    )
    return auth_key_id(key)


async def _try_delete(
    context: AppContext, actor: Actor, user_id: str, node_id: str, name: str | None, origin: str
) -> bool:
    """One device that Tailscale will not delete must not lose the offboarding summary."""
    try:
        return await delete_device(context, actor, user_id, node_id, name, origin=origin)
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


async def remove_user_device(
    context: AppContext, actor: Actor, user_id: str, node_id: str, *, origin: str = ORIGIN_API
) -> None:
    """Delete one device tsprov provisioned for the user, at Tailscale."""
    async with context.sessions() as session:
        rows = {row.device_node_id: row for row in await provisioned_devices(session, user_id)}
    if node_id not in rows:
        raise NotFound("tsprov provisioned no such device for this user.")
    if not context.tailscale.has_observer:
        raise ServiceUnavailable("Deleting devices needs an observer credential.")
    name = rows[node_id].device_name
    await delete_device(context, actor, user_id, node_id, name, origin=origin)
