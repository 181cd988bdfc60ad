"""Watching for devices that joined with a key tsprov handed out (through the observer)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.events import ORIGIN_BACKGROUND, WORKER, Target, record_event
from service.grants.store import load_grant
from service.models import ProvisioningRequest
from service.provisioning.status import RequestStatus
from service.provisioning.store import any_claimed_since, linked_node_ids, lock_claimed_since
from service.provisioning.transitions import change_status, record_request_failure
from service.state import AppContext
from service.tailscale.client import Device
from service.users.store import find_user

WATCH_WINDOW = timedelta(hours=24)
CLOCK_SKEW = timedelta(minutes=2)


def _matches(request: ProvisioningRequest, expected_login: str | None, device: Device) -> bool:
    """Created after the claim, and named by the hostname asked for or owned by the login."""
    claimed = request.claimed_at
    if claimed is None or (device.created is not None and device.created < claimed - CLOCK_SKEW):
        return False
    if request.hostname:
        return device.hostname.lower() == request.hostname.lower()
    return bool(expected_login) and device.user.lower() == (expected_login or "").lower()


async def watch_joined_devices(context: AppContext, session: AsyncSession) -> int:
    """Claimed requests whose device has appeared become ``joined`` (or ``failed``)."""
    if not context.tailscale.has_observer:
        return 0
    since = datetime.now(UTC) - WATCH_WINDOW
    if not await any_claimed_since(session, since):
        return 0
    # Ask Tailscale before locking anything: a claim or cancel must not wait on this call.
    listed = await context.tailscale.list_devices()
    waiting = await lock_claimed_since(session, since)
    taken = await linked_node_ids(session)
    devices = [device for device in listed if device.node_id not in taken]
    count = 0
    for request in waiting:
        user = await find_user(session, request.user_id)
        grant = await load_grant(session, request.grant_id)
        expected = (user.tailscale_login if user else None) or (grant.login_name if grant else None)
        found = next((d for d in devices if _matches(request, expected, d)), None)
        if found is None:
            continue
        devices.remove(found)
        await _record_join(session, request, found, user.tailscale_login if user else None)
        count += 1
    return count


async def _record_join(
    session: AsyncSession, request: ProvisioningRequest, device: Device, expected: str | None
) -> None:
    request.device_node_id = device.node_id
    request.device_name = device.name
    request.device_user = device.user
    request.device_joined_at = device.created or datetime.now(UTC)
    request.device_authorized = device.authorized  # followup.py takes it from here
    await record_event(
        session,
        origin=ORIGIN_BACKGROUND,
        actor=WORKER,
        target=Target(
            id=device.node_id, name=device.name, type="NODE", is_ephemeral=device.is_ephemeral
        ),
        action="CREATE",
        details=f"joined for request {request.id}",
        user_id=request.user_id,
    )
    if expected and device.user.lower() != expected.lower():
        # The key was used by someone else's Tailscale account: flag it, loudly.
        request.failure_reason = "identity_mismatch"
        await record_request_failure(
            session,
            request,
            actor=WORKER,
            origin=ORIGIN_BACKGROUND,
            action="UPDATE",
            error=f"device owner {device.user!r} is not the expected {expected!r}",
        )
        await change_status(
            session,
            request,
            RequestStatus.FAILED,
            actor=WORKER,
            origin=ORIGIN_BACKGROUND,
            error="identity_mismatch",
        )
        return
    await change_status(
        session, request, RequestStatus.JOINED, actor=WORKER, origin=ORIGIN_BACKGROUND
    )
