"""The background loop inside ``tsprov serve`` and its job table; each job's body lives in its
domain (expiry, purges, device watch, mint reconciling, audit sealing and links).

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

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.events import ORIGIN_BACKGROUND, WORKER, event_group
from service.audit.links import link_upstream_events
from service.audit.sealer import SEALER_LOCK, publish_after_commit, seal_audit_events
from service.callers.idempotency import purge_idempotency_records
from service.consent.flow import purge_spent_flows
from service.db import transaction
from service.grants.store import expire_overdue_grants
from service.models import BackgroundRun
from service.provisioning.devices import watch_joined_devices
from service.provisioning.followup import follow_up_joined_devices
from service.provisioning.upkeep import (
    expire_overdue_requests,
    settle_stalled_mints,
    sweep_orphan_keys,
)
from service.state import AppContext
from service.webhooks.outbox import purge_finished_deliveries
from service.webhooks.sender import WebhookSender

log = logging.getLogger("tsprov.background")
LINK_LOOKBACK = timedelta(hours=1)
Job = Callable[[AppContext, AsyncSession], Awaitable[int]]


async def expire_requests(context: AppContext, session: AsyncSession) -> int:
    return await expire_overdue_requests(session, WORKER, ORIGIN_BACKGROUND)


async def expire_grants(context: AppContext, session: AsyncSession) -> int:
    return await expire_overdue_grants(session, WORKER, ORIGIN_BACKGROUND)


async def purge_spent_records(context: AppContext, session: AsyncSession) -> int:
    """Spent flows, expired idempotency records, and claim answers past their replay window."""
    return await purge_spent_flows(session) + await purge_idempotency_records(session)


async def settle_pending_mints(context: AppContext, session: AsyncSession) -> int:
    cutoff = datetime.now(UTC) - context.settings.operation_lease
    return await settle_stalled_mints(context, session, cutoff)


async def link_to_tailscale_log(context: AppContext, session: AsyncSession) -> int:
    """Cross-reference our NODE.CREATE events with Tailscale's own, via the observer."""
    since = datetime.now(UTC) - LINK_LOOKBACK
    return await link_upstream_events(session, context.tailscale, since)


async def seal_audit_trail(context: AppContext, session: AsyncSession) -> int:
    """Link committed audit events into the hash chain and sign the new head."""
    every = timedelta(seconds=context.settings.audit_checkpoint_interval_seconds)
    sealed = await seal_audit_events(session, context.audit_signer, checkpoint_every=every)
    context.metrics.audit_sealer_lag.set(sealed.pending)
    if sealed.checkpoint is not None:
        publish_after_commit(session, sealed.checkpoint, context.metrics)
    return sealed.sealed


async def purge_webhook_deliveries(context: AppContext, session: AsyncSession) -> int:
    return await purge_finished_deliveries(session)


@dataclass(frozen=True)
class BackgroundJob:
    lock_id: int
    run: Job
    every_ticks: int = 1  # jobs that call Tailscale run less often than local clean-ups


JOB_LOCK_BASE = 0x7473_7072_6F76_1000
JOBS: dict[str, BackgroundJob] = {
    "expire_requests": BackgroundJob(1, expire_requests),
    "expire_grants": BackgroundJob(2, expire_grants),
    "purge_spent_records": BackgroundJob(3, purge_spent_records),
    "settle_pending_mints": BackgroundJob(4, settle_pending_mints),
    "sweep_orphan_keys": BackgroundJob(10, sweep_orphan_keys),
    "watch_joined_devices": BackgroundJob(5, watch_joined_devices),
    "link_to_tailscale_log": BackgroundJob(6, link_to_tailscale_log, every_ticks=12),
    "purge_webhook_deliveries": BackgroundJob(9, purge_webhook_deliveries, every_ticks=60),
    "follow_up_joined_devices": BackgroundJob(8, follow_up_joined_devices, every_ticks=2),
    # Under its try-lock one replica seals at a time; writers never take this lock.
    "seal_audit_trail": BackgroundJob(SEALER_LOCK - JOB_LOCK_BASE, seal_audit_trail),
}


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
            changed = await job.run(context, session)
        await record_run(session, name, changed)
        return changed


async def record_run(session: AsyncSession, name: str, changed: int) -> None:
    """Note the run in the job's own transaction: a run that failed is not a run."""
    now = datetime.now(UTC)
    await session.execute(
        insert(BackgroundRun)
        .values(job=name, last_run_at=now, rows_changed=changed)
        .on_conflict_do_update(
            index_elements=[BackgroundRun.job], set_={"last_run_at": now, "rows_changed": changed}
        )
    )


async def last_runs(session: AsyncSession) -> dict[str, datetime]:
    """When each job last ran to the end, on any replica."""
    rows = await session.execute(select(BackgroundRun.job, BackgroundRun.last_run_at))
    return {row.job: row.last_run_at for row in rows}


class BackgroundWorker:
    """Runs every job each ``background_interval_seconds`` until stopped, and the webhook
    sender, whose latency needs a loop of its own (``webhooks/sender.py``)."""

    def __init__(self, context: AppContext) -> None:
        self._context = context
        self._task: asyncio.Task[None] | None = None
        self._webhooks = WebhookSender(context)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="tsprov-background")
        self._webhooks.start()

    async def stop(self) -> None:
        await self._webhooks.stop()
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
