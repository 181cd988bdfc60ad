"""The background loop inside ``tsprov serve`` and its job table; each job's body lives in its
domain (expiry, purges, device watch, mint reconciling, audit links).

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

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.events import ORIGIN_BACKGROUND, WORKER, event_group
from service.audit.links import link_upstream_events
from service.callers.idempotency import purge_idempotency_records
from service.consent.flow import purge_spent_flows
from service.db import transaction
from service.grants.store import expire_overdue_grants
from service.provisioning.devices import watch_joined_devices
from service.provisioning.upkeep import expire_overdue_requests, settle_stalled_mints
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
    return await settle_stalled_mints(session, cutoff)


async def link_to_tailscale_log(context: AppContext, session: AsyncSession) -> int:
    """Cross-reference our NODE.CREATE events with Tailscale's own, via the observer."""
    since = datetime.now(UTC) - LINK_LOOKBACK
    return await link_upstream_events(session, context.tailscale, since)


async def purge_webhook_deliveries(context: AppContext, session: AsyncSession) -> int:
    return await purge_finished_deliveries(session)


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
    "purge_webhook_deliveries": BackgroundJob(7, purge_webhook_deliveries, every_ticks=60),
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
