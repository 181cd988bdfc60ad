"""Watching for devices that joined with a key tsprov handed out (through the observer).

A device is linked to its request by the key that enrolled it, as Tailscale's ``NODE.CREATE``
event names it: never by hostname, which whoever holds a key may choose, so a device made
with another request's key is never taken for this one. When the device's owner is not the
login expected for the user, the device is deleted and the grant torn down in the same run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.events import ORIGIN_BACKGROUND, WORKER, Target, record_event
from service.consent.mismatch import (
    Deletion,
    audit_deletions,
    delete_upstream,
    lock_user_rows,
    mismatch_error,
    tear_down_mismatch,
)
from service.grants.store import load_grant
from service.models import ProvisioningRequest
from service.provisioning.status import RequestStatus
from service.provisioning.store import linked_node_ids, lock_claimed_since, oldest_claim_since
from service.provisioning.transitions import change_status
from service.settings import IdentityBinding
from service.state import AppContext
from service.tailscale.client import Device
from service.users.store import find_user

WATCH_WINDOW = timedelta(hours=24)
CLOCK_SKEW = timedelta(minutes=2)
NODE_CREATE = "NODE.CREATE"


@dataclass(frozen=True)
class _Join:
    request: ProvisioningRequest
    device: Device
    expected: str | None

    @property
    def mismatched(self) -> bool:
        # A tagged device belongs to its tags, not to a person: there is no owner to compare.
        owner = self.device.user
        if not self.expected or self.device.tags:
            return False
        return owner.lower() != self.expected.lower()


def enrolling_keys(logs: Sequence[dict[str, Any]]) -> dict[str, list[str]]:
    """Key id → the nodes Tailscale's NODE.CREATE events say it enrolled, in log order."""
    enrolled: dict[str, list[str]] = {}
    for event in logs:
        target, new = event.get("target"), event.get("new")
        node_id = target.get("id") if isinstance(target, dict) else None
        key_id = new.get("keyId") if isinstance(new, dict) else None
        if isinstance(node_id, str) and isinstance(key_id, str) and node_id and key_id:
            enrolled.setdefault(key_id, []).append(node_id)
    return enrolled


async def watch_joined_devices(context: AppContext, session: AsyncSession) -> int:
    """Claimed requests whose device has appeared become ``joined`` (or ``failed``)."""
    if not context.tailscale.has_observer:
        return 0
    since = datetime.now(UTC) - WATCH_WINDOW
    oldest = await oldest_claim_since(session, since)
    if oldest is None:
        return 0
    # Ask Tailscale before locking anything: a claim or cancel must not wait on this call.
    logs = await context.tailscale.configuration_log(
        start=oldest - CLOCK_SKEW, end=datetime.now(UTC) + CLOCK_SKEW, events=[NODE_CREATE]
    )
    enrolled = enrolling_keys(logs)
    if not enrolled:
        return 0
    devices = {device.node_id: device for device in await context.tailscale.list_devices()}
    joins = await _find_joins(context, session, since, enrolled, devices)
    mismatched = [join for join in joins if join.mismatched]
    # Tailscale first, then every row lock, and only then the audit appends: neither an
    # upstream call nor a row lock may be waited for while this job holds the chain lock.
    deletions = [await _delete_at_tailscale(context, join) for join in mismatched]
    for join in mismatched:
        await lock_user_rows(session, join.request.user_id)
    for join, deleted in zip(mismatched, deletions, strict=True):
        await _tear_down(context, session, join, deleted)
    for join in joins:
        await _record_join(session, join)
    return len(joins)


async def _find_joins(
    context: AppContext,
    session: AsyncSession,
    since: datetime,
    enrolled: dict[str, list[str]],
    devices: dict[str, Device],
) -> list[_Join]:
    waiting = await lock_claimed_since(session, since)
    taken = await linked_node_ids(session)
    joins = []
    for request in waiting:
        nodes = enrolled.get(request.key_id or "", [])
        found = next((devices[n] for n in nodes if n in devices and n not in taken), None)
        if found is None:
            continue
        taken.add(found.node_id)
        joins.append(_Join(request, found, await _expected_login(context, session, request)))
    return joins


async def _expected_login(
    context: AppContext, session: AsyncSession, request: ProvisioningRequest
) -> str | None:
    settings = context.settings
    if settings.binding == IdentityBinding.OFF:
        return None
    user = await find_user(session, request.user_id)
    expected = settings.expected_login(request.user_id, user.tailscale_login if user else None)
    if expected is None:
        # The login a source confirmed at consent, when the user has none of their own.
        grant = await load_grant(session, request.grant_id)
        expected = grant.login_name if grant and grant.identity_verified_at else None
    return expected


async def _delete_at_tailscale(context: AppContext, join: _Join) -> list[Deletion]:
    request = join.request
    return await delete_upstream(
        context,
        user_id=request.user_id,
        key_id=request.key_id or "",
        node_ids=[join.device.node_id],
    )


async def _tear_down(
    context: AppContext, session: AsyncSession, join: _Join, deletions: list[Deletion]
) -> None:
    """The request fails, the grant is revoked, the user's requests go back to consent."""
    request = join.request
    await tear_down_mismatch(
        session,
        context.require_key_ring(),
        request=request,
        grant=await load_grant(session, request.grant_id),
        error=mismatch_error(join.device.user, join.expected or ""),
        actor=WORKER,
        origin=ORIGIN_BACKGROUND,
    )
    await audit_deletions(session, deletions, actor=WORKER, origin=ORIGIN_BACKGROUND)


async def _record_join(session: AsyncSession, join: _Join) -> None:
    request, device = join.request, join.device
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
    if not join.mismatched:
        await change_status(
            session, request, RequestStatus.JOINED, actor=WORKER, origin=ORIGIN_BACKGROUND
        )
    await session.flush()
