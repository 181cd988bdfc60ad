"""Following up on a device that joined: its approval, and the attribute naming its request.

A tailnet with device approval (``devicesApprovalOn``) holds a new device until someone
approves it. tsprov shows that as ``device.authorized: false``, approves the device itself
where the caller asked for a preauthorized one, and notices when an admin approves it. A
402 on the approval (quota, billing) fails the request with ``device_quota_exceeded``.
Where ``TSPROV_NODE_ATTRIBUTE`` is set, tsprov sets ``<prefix>:<request id>`` on the device,
so Tailscale's own record names the request.

Tailscale is asked before any row is locked; the outcomes are recorded afterwards, under the
row lock, and only for a request still joined. A device linked as someone else's
(``identity_mismatch``) is failed, never joined, so it is never approved here.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.events import ORIGIN_BACKGROUND, WORKER, Target, record_event
from service.models import ProvisioningRequest
from service.provisioning.status import RequestStatus
from service.provisioning.store import joined_to_follow_up, lock_joined_to_follow_up
from service.provisioning.transitions import change_status, record_request_failure
from service.state import AppContext
from service.tailscale.client import Device, TailscaleError, UpstreamRefused

log = logging.getLogger("tsprov.devices")
FOLLOW_UP_WINDOW = timedelta(hours=24)
BATCH = 100
QUOTA_EXCEEDED = "device_quota_exceeded"


@dataclass
class _Outcome:
    """What Tailscale answered for one device; ``retry`` when it could not answer."""

    approved: bool = False
    quota_refusal: str = ""
    approval_refusal: str = ""
    attribute: str = ""
    attribute_refusal: str = ""
    retry: bool = False


def request_attribute(prefix: str, request: ProvisioningRequest) -> str:
    """``<prefix>:<request id as 32 hex digits>``: Tailscale's attribute names allow no '-'."""
    return f"{prefix}:{request.id.hex}"


async def follow_up_joined_devices(context: AppContext, session: AsyncSession) -> int:
    """Approve, label and watch the approval of recently joined devices; how many changed."""
    if not context.tailscale.has_observer:
        return 0
    since = datetime.now(UTC) - FOLLOW_UP_WINDOW
    waiting = await joined_to_follow_up(session, since, BATCH)
    if not waiting:
        return 0
    listed = {device.node_id: device for device in await context.tailscale.list_devices()}
    # Ids copied now: locking re-reads each row into the very objects read above.
    answers: list[tuple[uuid.UUID, str, Device | None, _Outcome]] = []
    for request in waiting:
        node_id = request.device_node_id or ""
        device = listed.get(node_id)
        outcome = await _ask_tailscale(context, request, device) if device else _Outcome()
        answers.append((request.id, node_id, device, outcome))
    changed = 0
    for request_id, node_id, device, outcome in answers:
        locked = await lock_joined_to_follow_up(session, request_id, since)
        if locked is None or locked.device_node_id != node_id:
            continue
        if device is None:
            _forget_deleted_device(locked)
        else:
            changed += await _record(session, locked, device, outcome)
    return changed


def _forget_deleted_device(request: ProvisioningRequest) -> None:
    """Deleted at Tailscale: nothing to follow up, and its approval is no longer known."""
    request.device_followed_up_at = datetime.now(UTC)
    request.device_authorized = None


async def _ask_tailscale(
    context: AppContext, request: ProvisioningRequest, device: Device
) -> _Outcome:
    outcome = _Outcome()
    if request.device_followed_up_at is not None:
        return outcome  # only watching for an admin's approval now
    if not device.authorized and request.preauthorized:
        try:
            await context.tailscale.authorize_device(device.node_id)
            outcome.approved = True
        except UpstreamRefused as exc:
            if exc.status == 402:
                outcome.quota_refusal = exc.message
            else:
                outcome.approval_refusal = f"{exc.status} {exc.message}"
        except TailscaleError as exc:
            log.warning("approving device %s failed: %s", device.node_id, exc.code)
            outcome.retry = True
    prefix = context.settings.node_attribute
    if prefix and request.device_attribute is None:
        await _set_attribute(context, request_attribute(prefix, request), device, outcome)
    return outcome


async def _set_attribute(context: AppContext, key: str, device: Device, outcome: _Outcome) -> None:
    try:
        await context.tailscale.set_device_attribute(device.node_id, key, True)
        outcome.attribute = key
    except UpstreamRefused as exc:
        # Most often the observer lacks devices:posture_attributes: audited once, not retried.
        outcome.attribute_refusal = f"{exc.status} {exc.message}"
    except TailscaleError as exc:
        log.warning("labelling device %s failed: %s", device.node_id, exc.code)
        outcome.retry = True


def _node(device: Device, prop: str) -> Target:
    return Target(
        id=device.node_id,
        name=device.name,
        type="NODE",
        property=prop,
        is_ephemeral=device.is_ephemeral,
    )


async def _record(
    session: AsyncSession, request: ProvisioningRequest, device: Device, outcome: _Outcome
) -> int:
    """Record what is settled; a step Tailscale could not answer is decided on a later tick,
    so each event is written once."""
    first_look = request.device_followed_up_at is None
    authorized = device.authorized or outcome.approved
    if outcome.quota_refusal:
        request.device_followed_up_at = datetime.now(UTC)
        await _fail_for_quota(session, request, device, outcome.quota_refusal)
        return 1
    changed = authorized and request.device_authorized is not True
    if changed:
        await _record_approved(session, request, device, by_tsprov=outcome.approved)
    if outcome.attribute:
        await _record_attribute(session, request, device, outcome)
    if outcome.retry:
        return int(changed or bool(outcome.attribute))
    request.device_followed_up_at = datetime.now(UTC)
    if first_look and not authorized:
        await _record_waiting(session, request, device, outcome.approval_refusal)
    if outcome.attribute_refusal:
        await _record_attribute(session, request, device, outcome)
    return int(changed or first_look)


async def _record_approved(
    session: AsyncSession, request: ProvisioningRequest, device: Device, *, by_tsprov: bool
) -> None:
    request.device_authorized = True
    request.updated_at = datetime.now(UTC)
    await record_event(
        session,
        origin=ORIGIN_BACKGROUND,
        actor=WORKER,
        target=_node(device, "AUTHORIZED"),
        action="APPROVE",
        old={"authorized": False},
        new={"authorized": True},
        details=f"approved by tsprov for request {request.id}, which asked for a preauthorized "
        "device"
        if by_tsprov
        else f"approved at Tailscale; device of request {request.id}",
        user_id=request.user_id,
    )


async def _record_waiting(
    session: AsyncSession, request: ProvisioningRequest, device: Device, refusal: str
) -> None:
    """The device waits for an admin; ``refusal`` is why tsprov could not approve it."""
    request.device_authorized = False
    request.updated_at = datetime.now(UTC)
    await record_event(
        session,
        origin=ORIGIN_BACKGROUND,
        actor=WORKER,
        target=_node(device, "AUTHORIZED"),
        action="UPDATE",
        new={"authorized": False},
        details=f"device of request {request.id} waits for approval at Tailscale",
        error=f"approval refused: {refusal}" if refusal else "",
        user_id=request.user_id,
    )


async def _record_attribute(
    session: AsyncSession, request: ProvisioningRequest, device: Device, outcome: _Outcome
) -> None:
    if outcome.attribute:
        request.device_attribute = outcome.attribute
    refusal = outcome.attribute_refusal
    await record_event(
        session,
        origin=ORIGIN_BACKGROUND,
        actor=WORKER,
        target=_node(device, "ATTRIBUTES"),
        action="UPDATE",
        new={outcome.attribute: True} if outcome.attribute else None,
        details=f"names request {request.id}",
        error=f"attribute not set: {refusal}" if refusal else "",
        user_id=request.user_id,
    )


async def _fail_for_quota(
    session: AsyncSession, request: ProvisioningRequest, device: Device, message: str
) -> None:
    request.device_authorized = False
    request.failure_reason = QUOTA_EXCEEDED
    await record_request_failure(
        session,
        request,
        actor=WORKER,
        origin=ORIGIN_BACKGROUND,
        action="UPDATE",
        error=f"Tailscale refused to approve device {device.node_id} (402): {message}",
    )
    await change_status(
        session,
        request,
        RequestStatus.FAILED,
        actor=WORKER,
        origin=ORIGIN_BACKGROUND,
        error=QUOTA_EXCEEDED,
    )
