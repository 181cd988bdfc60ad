"""Background work inside ``tsprov serve``: expiry, purges, device watch, mint reconciling.

Every job runs under a transaction-scoped advisory try-lock, so with several replicas one
runs each job per tick and the others skip it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Result, delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.events import ORIGIN_BACKGROUND, WORKER, event_group, format_time, record_event
from service.audit.links import link_upstream_events
from service.db import transaction
from service.grants.status import GrantStatus
from service.grants.store import set_grant_status
from service.models import ConsentFlow, ConsentGrant, IdempotencyRecord, ProvisioningRequest
from service.provisioning.devices import watch_joined_devices
from service.provisioning.notify import notify_request_changed
from service.provisioning.status import RequestStatus
from service.provisioning.store import change_status, request_target
from service.state import AppContext

log = logging.getLogger("tsprov.background")
FLOW_KEEP = timedelta(hours=1)
LINK_LOOKBACK = timedelta(hours=1)
Job = Callable[[AppContext, AsyncSession], Awaitable[int]]


async def expire_requests(context: AppContext, session: AsyncSession) -> int:
    now = datetime.now(UTC)
    rows = await session.scalars(
        select(ProvisioningRequest)
        .where(
            (ProvisioningRequest.status == RequestStatus.AWAITING_CONSENT)
            & (ProvisioningRequest.consent_expires_at < now)
            | (ProvisioningRequest.status == RequestStatus.READY)
            & (ProvisioningRequest.key_expires_at < now)
        )
        .with_for_update(skip_locked=True)
        .limit(500)
    )
    count = 0
    for request in rows:
        await change_status(
            session, request, RequestStatus.EXPIRED, actor=WORKER, origin=ORIGIN_BACKGROUND
        )
        count += 1
    return count


async def expire_grants(context: AppContext, session: AsyncSession) -> int:
    now = datetime.now(UTC)
    grants = await session.scalars(
        select(ConsentGrant)
        .where(ConsentGrant.status == "active", ConsentGrant.expires_at < now)
        .with_for_update(skip_locked=True)
        .limit(500)
    )
    count = 0
    for grant in grants:
        await set_grant_status(
            session,
            grant,
            GrantStatus.EXPIRED,
            actor=WORKER,
            origin=ORIGIN_BACKGROUND,
            action="EXPIRED",
        )
        count += 1
    return count


async def purge_spent_records(context: AppContext, session: AsyncSession) -> int:
    """Spent flows, expired idempotency records, and claim answers past their replay window."""
    now = datetime.now(UTC)
    flows = await session.execute(
        delete(ConsentFlow).where(ConsentFlow.expires_at < now - FLOW_KEEP)
    )
    records = await session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.expires_at < now)
    )
    wiped = await session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.wipe_at < now, IdempotencyRecord.response_ciphertext.is_not(None))
        .values(response_ciphertext=None)
    )
    return sum(_rows_changed(result) for result in (flows, records, wiped))


def _rows_changed(result: Result[Any]) -> int:
    # DML results are CursorResults at run time; the generic Result type hides rowcount.
    return cast(CursorResult[Any], result).rowcount or 0


async def settle_pending_mints(context: AppContext, session: AsyncSession) -> int:
    """A mint whose outcome never arrived in time: its claim gave up (or its process died)
    without handing out a key, so the request may be claimed again."""
    cutoff = datetime.now(UTC) - context.settings.operation_lease
    rows = await session.scalars(
        select(ProvisioningRequest)
        .where(
            ProvisioningRequest.status == RequestStatus.READY,
            ProvisioningRequest.mint_started_at < cutoff,
        )
        .with_for_update(skip_locked=True)
    )
    count = 0
    for request in rows:
        started = request.mint_started_at
        request.mint_started_at = None
        await record_event(
            session,
            origin=ORIGIN_BACKGROUND,
            actor=WORKER,
            target=request_target(request, "MINT"),
            action="UPDATE",
            old={"mintStartedAt": format_time(started) if started else None},
            new={"mintStartedAt": None},
            details="a key mint with an unknown outcome was abandoned; its key, if Tailscale "
            "made one, reached nobody and expires there; the request may be claimed again",
            user_id=request.user_id,
        )
        await notify_request_changed(session, request.id)
        count += 1
    return count


async def link_to_tailscale_log(context: AppContext, session: AsyncSession) -> int:
    """Cross-reference our NODE.CREATE events with Tailscale's own, via the observer."""
    since = datetime.now(UTC) - LINK_LOOKBACK
    return await link_upstream_events(session, context.tailscale, since)


@dataclass(frozen=True)
class BackgroundJob:
    lock_id: int
    run: Job
    every_ticks: int = 1  # jobs that call Tailscale run less often than local clean-ups


JOBS: dict[str, BackgroundJob] = {
    "expire_requests": BackgroundJob(1, expire_requests),
    "expire_grants": BackgroundJob(2, expire_grants),
    "purge_spent_records": BackgroundJob(3, purge_spent_records),
    "settle_pending_mints": BackgroundJob(4, settle_pending_mints),
    "watch_joined_devices": BackgroundJob(5, watch_joined_devices, every_ticks=2),
    "link_to_tailscale_log": BackgroundJob(6, link_to_tailscale_log, every_ticks=12),
}
JOB_LOCK_BASE = 0x7473_7072_6F76_1000


async def run_job(context: AppContext, name: str) -> int:
    """Run one job if no other replica holds it; returns how many rows it changed."""
    job = JOBS[name]
    async with transaction(context.sessions) as session:
        got = await session.scalar(
            text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": JOB_LOCK_BASE + job.lock_id}
        )
        if not got:
            return 0
        with event_group():
            return await job.run(context, session)


class BackgroundWorker:
    """Runs every job each ``background_interval_seconds`` until stopped."""

    def __init__(self, context: AppContext) -> None:
        self._context = context
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="tsprov-background")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        for tick in itertools.count():
            for name, job in JOBS.items():
                if tick % job.every_ticks:
                    continue
                try:
                    await run_job(self._context, name)
                except Exception as exc:  # one failing job must not stop the others
                    log.warning("background job %s failed: %s", name, type(exc).__name__)
            await asyncio.sleep(self._context.settings.background_interval_seconds)
