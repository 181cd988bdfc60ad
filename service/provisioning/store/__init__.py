"""Every query on ``provisioning_request``: plain functions that take a session (a claim's
two writes are in ``claims.py``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, column, exists, func, or_, select, table, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from service.models import ProvisioningRequest
from service.provisioning.status import OPEN_STATUSES, RequestStatus
from service.web.errors import NotFound

Cursor = tuple[datetime, uuid.UUID]


@dataclass(frozen=True)
class RequestFilter:
    """Operators' filters over every user's requests; None matches all, times bound
    ``created_at`` as ``[created_from, created_until)``."""

    user_id: str | None = None
    created_by: str | None = None
    status: RequestStatus | None = None
    created_from: datetime | None = None
    created_until: datetime | None = None


async def count_by_status(session: AsyncSession) -> dict[RequestStatus, int]:
    """How many requests are in each status (every status named, zero included)."""
    rows = await session.execute(
        select(ProvisioningRequest.status, func.count()).group_by(ProvisioningRequest.status)
    )
    counted: dict[RequestStatus, int] = {row[0]: row[1] for row in rows}
    return {status: counted.get(status, 0) for status in RequestStatus}


async def load_request(
    session: AsyncSession, request_id: uuid.UUID, *, lock: bool = False
) -> ProvisioningRequest:
    query = select(ProvisioningRequest).where(ProvisioningRequest.id == request_id)
    if lock:
        query = query.with_for_update()
    request = await session.scalar(query)
    if request is None:
        raise NotFound("No such provisioning request.")
    return request


async def owner_of(session: AsyncSession, request_id: uuid.UUID) -> str | None:
    """The user a request is for, without loading the row."""
    return await session.scalar(
        select(ProvisioningRequest.user_id).where(ProvisioningRequest.id == request_id)
    )


async def find_by_consent_token(
    session: AsyncSession, token_hash: bytes
) -> ProvisioningRequest | None:
    return await session.scalar(
        select(ProvisioningRequest).where(ProvisioningRequest.consent_token_hash == token_hash)
    )


async def page_for_user(
    session: AsyncSession,
    user_id: str,
    status: RequestStatus | None,
    limit: int,
    after: Cursor | None,
) -> list[ProvisioningRequest]:
    """Up to ``limit + 1`` of a user's requests, newest first, after the cursor (keyset)."""
    query = select(ProvisioningRequest).where(ProvisioningRequest.user_id == user_id)
    if status is not None:
        query = query.where(ProvisioningRequest.status == status)
    query = _newest_first_after(query, after)
    return list(await session.scalars(query.limit(limit + 1)))


def _newest_first_after(query: Select[Any], after: Cursor | None) -> Select[Any]:
    if after is not None:
        # A row comparison, not the equivalent OR: only this form lets the index seek
        # straight to the cursor instead of filtering every row before it.
        query = query.where(
            tuple_(ProvisioningRequest.created_at, ProvisioningRequest.id) < tuple_(*after)
        )
    return query.order_by(ProvisioningRequest.created_at.desc(), ProvisioningRequest.id.desc())


async def page_of_requests(
    session: AsyncSession, wanted: RequestFilter, limit: int, after: Cursor | None
) -> list[ProvisioningRequest]:
    """Up to ``limit + 1`` requests of any user, newest first, after the cursor (keyset).

    Each filter has an index led by its column and ending in ``(created_at, id)``
    (migration 0011), so a page costs the same at any depth.
    """
    query = select(ProvisioningRequest)
    if wanted.user_id is not None:
        query = query.where(ProvisioningRequest.user_id == wanted.user_id)
    if wanted.created_by is not None:
        query = query.where(ProvisioningRequest.created_by == wanted.created_by)
    if wanted.status is not None:
        query = query.where(ProvisioningRequest.status == wanted.status)
    if wanted.created_from is not None:
        query = query.where(ProvisioningRequest.created_at >= wanted.created_from)
    if wanted.created_until is not None:
        query = query.where(ProvisioningRequest.created_at < wanted.created_until)
    query = _newest_first_after(query, after)
    return list(await session.scalars(query.limit(limit + 1)))


async def device_counts(session: AsyncSession, user_ids: list[str]) -> dict[str, int]:
    """How many joined devices each of these users has (for a page of users)."""
    query = (
        select(ProvisioningRequest.user_id, func.count())
        .where(
            ProvisioningRequest.user_id.in_(user_ids),
            ProvisioningRequest.device_node_id.is_not(None),
        )
        .group_by(ProvisioningRequest.user_id)
    )
    counted: dict[str, int] = {
        user_id: int(count) for user_id, count in await session.execute(query)
    }
    return {user_id: counted.get(user_id, 0) for user_id in user_ids}


async def provisioned_devices(
    session: AsyncSession, user_id: str, limit: int | None = None
) -> list[ProvisioningRequest]:
    """A user's requests whose device joined, newest join first (the newest ``limit``)."""
    query = (
        select(ProvisioningRequest)
        .where(
            ProvisioningRequest.user_id == user_id, ProvisioningRequest.device_node_id.is_not(None)
        )
        .order_by(ProvisioningRequest.device_joined_at.desc())
    )
    return list(await session.scalars(query.limit(limit)))


async def lock_open_requests(session: AsyncSession, user_id: str) -> list[ProvisioningRequest]:
    """A user's requests still awaiting consent or a claim, locked in a fixed order."""
    query = select(ProvisioningRequest).where(
        ProvisioningRequest.user_id == user_id, ProvisioningRequest.status.in_(OPEN_STATUSES)
    )
    return list(await session.scalars(query.order_by(ProvisioningRequest.id).with_for_update()))


def _claimed_since(since: datetime) -> Any:
    return select(ProvisioningRequest).where(
        ProvisioningRequest.status == RequestStatus.CLAIMED, ProvisioningRequest.claimed_at > since
    )


async def oldest_claim_since(session: AsyncSession, since: datetime) -> datetime | None:
    """When the longest-waiting claimed request was claimed; None when none waits."""
    return await session.scalar(
        select(func.min(ProvisioningRequest.claimed_at)).where(
            ProvisioningRequest.status == RequestStatus.CLAIMED,
            ProvisioningRequest.claimed_at > since,
        )
    )


async def lock_claimed_since(session: AsyncSession, since: datetime) -> list[ProvisioningRequest]:
    """Claimed requests waiting for their device, skipping those another worker holds."""
    return list(await session.scalars(_claimed_since(since).with_for_update(skip_locked=True)))


async def linked_node_ids(session: AsyncSession) -> set[str]:
    """Every device already linked to a request: none may be linked twice."""
    rows = await session.scalars(
        select(ProvisioningRequest.device_node_id).where(
            ProvisioningRequest.device_node_id.is_not(None)
        )
    )
    return {node_id for node_id in rows if node_id is not None}


async def lock_overdue_requests(
    session: AsyncSession, now: datetime, limit: int
) -> list[ProvisioningRequest]:
    """Open requests whose consent window or one-time key has run out."""
    query = select(ProvisioningRequest).where(
        (ProvisioningRequest.status == RequestStatus.AWAITING_CONSENT)
        & (ProvisioningRequest.consent_expires_at < now)
        | (ProvisioningRequest.status == RequestStatus.READY)
        & (ProvisioningRequest.key_expires_at < now)
    )
    return list(await session.scalars(query.with_for_update(skip_locked=True).limit(limit)))


# Every connection's application_name; each tsprov process names its listening connection.
_SESSIONS = table("pg_stat_activity", column("application_name"))


async def lock_stalled_mints(session: AsyncSession, cutoff: datetime) -> list[ProvisioningRequest]:
    """Ready requests whose key mint never settled: started before ``cutoff`` (the lease), or
    owned by a process that Postgres no longer sees connected (it died)."""
    owner_gone = and_(
        ProvisioningRequest.mint_owner.is_not(None),
        ~exists().where(_SESSIONS.c.application_name == ProvisioningRequest.mint_owner),
    )
    query = select(ProvisioningRequest).where(
        ProvisioningRequest.status == RequestStatus.READY,
        ProvisioningRequest.mint_started_at.is_not(None),
        or_(ProvisioningRequest.mint_started_at < cutoff, owner_gone),
    )
    return list(await session.scalars(query.with_for_update(skip_locked=True)))


async def lock_due_orphan_sweeps(
    session: AsyncSession, now: datetime, limit: int
) -> list[ProvisioningRequest]:
    """Requests due a last look for a settled mint's key, with no mint of theirs in flight."""
    query = select(ProvisioningRequest).where(
        ProvisioningRequest.orphan_sweep_at <= now,
        ProvisioningRequest.mint_started_at.is_(None),
    )
    return list(await session.scalars(query.limit(limit).with_for_update(skip_locked=True)))


async def count_requests_by_status(session: AsyncSession) -> dict[str, int]:
    """How many requests hold each status, every status present (for the metrics gauge)."""
    rows = await session.execute(
        select(ProvisioningRequest.status, func.count()).group_by(ProvisioningRequest.status)
    )
    counted = {str(status): int(count) for status, count in rows}
    return {status.value: counted.get(status.value, 0) for status in RequestStatus}


def _joined_to_follow_up(since: datetime) -> Select[ProvisioningRequest]:
    """Joined since ``since``, and not yet followed up or still waiting for approval."""
    return select(ProvisioningRequest).where(
        ProvisioningRequest.status == RequestStatus.JOINED,
        ProvisioningRequest.device_joined_at > since,
        or_(
            ProvisioningRequest.device_followed_up_at.is_(None),
            ProvisioningRequest.device_authorized.is_(False),
        ),
    )


async def joined_to_follow_up(
    session: AsyncSession, since: datetime, limit: int
) -> list[ProvisioningRequest]:
    """Read without locks: the follow-up calls Tailscale before it locks anything."""
    query = _joined_to_follow_up(since).order_by(ProvisioningRequest.device_joined_at)
    return list(await session.scalars(query.limit(limit)))


async def lock_joined_to_follow_up(
    session: AsyncSession, request_id: uuid.UUID, since: datetime
) -> ProvisioningRequest | None:
    """The row again, locked and re-read; None if it moved on or another worker holds it."""
    query = (
        _joined_to_follow_up(since)
        .where(ProvisioningRequest.id == request_id)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    return await session.scalar(query)
