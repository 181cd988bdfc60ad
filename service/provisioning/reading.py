"""Reading provisioning requests for callers: one, a page, or one awaited by long-poll."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import time
import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.crypto.keyring import KeyRing
from service.db import read_alone
from service.grants.store import grants_by_id, load_grant
from service.models import ConsentGrant, ProvisioningRequest
from service.provisioning.create import consent_url
from service.provisioning.failures import request_failure
from service.provisioning.schemas import (
    DeviceSummary,
    GrantSummary,
    ProvisioningRequestOut,
    ProvisioningRequestPage,
)
from service.provisioning.status import FINAL_STATUSES, RequestStatus
from service.provisioning.store import load_request, owner_of, page_for_user
from service.settings import Settings
from service.state import AppContext
from service.web.errors import NotFound, ValidationFailed

# NOTIFY wakes a long-poll at once; this timer runs only while the listener is down.
LONG_POLL_RECHECK_SECONDS = 5.0


def request_out(
    settings: Settings, key_ring: KeyRing, request: ProvisioningRequest, grant: ConsentGrant | None
) -> ProvisioningRequestOut:
    device = None
    if request.device_node_id:
        device = DeviceSummary(
            node_id=request.device_node_id,
            name=request.device_name,
            user=request.device_user,
            joined_at=request.device_joined_at,
            authorized=request.device_authorized,
        )
    return ProvisioningRequestOut(
        id=request.id,
        user_id=request.user_id,
        status=request.status,
        hostname=request.hostname,
        description=request.description,
        consent_url=consent_url(settings, key_ring, request),
        consent_expires_at=request.consent_expires_at,
        key_expires_at=request.key_expires_at,
        grant=GrantSummary(mode=grant.mode, login_name=grant.login_name) if grant else None,
        device=device,
        failure=request_failure(request),
        created_by=request.created_by,
        created_at=request.created_at,
        updated_at=request.updated_at,
    )


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, row_id = raw.partition("|")
        return datetime.fromisoformat(stamp), uuid.UUID(row_id)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValidationFailed("The cursor is not valid.") from exc


async def read_request(
    context: AppContext, key_ring: KeyRing, request_id: uuid.UUID
) -> ProvisioningRequestOut:
    """One request as the caller sees it; reads only, outside a transaction (as a user's
    page is read, ``list_user_requests``)."""
    async with context.sessions() as session:
        await read_alone(session)
        row = await load_request(session, request_id)
        return request_out(context.settings, key_ring, row, await load_grant(session, row.grant_id))


async def wait_for_change(
    context: AppContext, key_ring: KeyRing, request_id: uuid.UUID, wait_seconds: int
) -> ProvisioningRequestOut:
    """Hold the answer until the status changes (on any replica) or the wait runs out.

    A NOTIFY wakes the wait; it re-reads only then, sharing the read with every other wait
    on the same request woken by the same change. Only while the listening connection is
    down does it re-read on a timer.
    """
    deadline = time.monotonic() + wait_seconds
    notifier = context.notifier
    # Watching before the first read: a change committed in between still wakes this wait.
    with notifier.watch(request_id) as changed:
        out = await read_request(context, key_ring, request_id)
        if out.status in FINAL_STATUSES:
            return out  # nothing can change any more: waiting would only delay the answer
        first_status = out.status
        # A draining replica answers now, so the caller re-polls one that stays up instead of
        # being cut off when the graceful shutdown runs out.
        while (
            out.status == first_status
            and not context.draining
            and (left := deadline - time.monotonic()) > 0
        ):
            timeout = left if notifier.listening else min(left, LONG_POLL_RECHECK_SECONDS)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=timeout)
            if not changed.is_set() and notifier.listening:
                continue  # the wait ran out with nothing notified: nothing to re-read
            changed.clear()
            out = await _shared_read(context, key_ring, out.id)
    return out


async def _shared_read(
    context: AppContext, key_ring: KeyRing, request_id: uuid.UUID
) -> ProvisioningRequestOut:
    # Keyed by the wake-up version: a read started before the latest change is never shared
    # with a wait that this change woke.
    flight = (request_id, context.notifier.version(request_id))
    return await context.request_reads.run(
        flight, lambda: read_request(context, key_ring, request_id)
    )


async def request_owner(sessions: async_sessionmaker[AsyncSession], request_id: uuid.UUID) -> str:
    """The user a request is for, read before anything else so access can be checked first."""
    async with sessions() as session:
        await read_alone(session)  # one SELECT: no transaction around it
        user_id = await owner_of(session, request_id)
    if user_id is None:
        raise NotFound("No such provisioning request.")
    return user_id


async def list_user_requests(
    context: AppContext,
    key_ring: KeyRing,
    user_id: str,
    status: RequestStatus | None,
    limit: int,
    cursor: str | None,
) -> ProvisioningRequestPage:
    """A user's requests, newest first, keyset-paginated on (created_at, id)."""
    after = decode_cursor(cursor) if cursor is not None else None
    async with context.sessions() as session:
        # Reads only, outside a transaction: under READ COMMITTED one would give the two
        # SELECTs no common snapshot anyway, and it costs a BEGIN and a ROLLBACK more.
        await read_alone(session)
        rows = await page_for_user(session, user_id, status, limit, after)
        grants = await grants_by_id(session, (row.grant_id for row in rows[:limit]))
    items = [
        request_out(
            context.settings, key_ring, row, grants.get(row.grant_id) if row.grant_id else None
        )
        for row in rows[:limit]
    ]
    last = rows[limit - 1] if len(rows) > limit else None
    next_cursor = encode_cursor(last.created_at, last.id) if last else None
    return ProvisioningRequestPage(items=items, next_cursor=next_cursor)
