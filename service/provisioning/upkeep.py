"""The provisioning side of the background jobs: expiry, and mints that never settled.

Each takes the job's session and only flushes; the job loop owns the transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.events import ORIGIN_BACKGROUND, WORKER, Actor, format_time, record_event
from service.provisioning.minting import mint_description
from service.provisioning.orphans import delete_orphan_keys
from service.provisioning.status import RequestStatus
from service.provisioning.store import (
    lock_due_orphan_sweeps,
    lock_overdue_requests,
    lock_stalled_mints,
)
from service.provisioning.transitions import change_status, request_target
from service.state import AppContext

ORPHAN_SWEEP_MARGIN = timedelta(seconds=5)
ORPHAN_SWEEPS_PER_RUN = 20


async def expire_overdue_requests(session: AsyncSession, actor: Actor, origin: str) -> int:
    """Open requests past their consent window or key expiry become ``expired``."""
    rows = await lock_overdue_requests(session, datetime.now(UTC), limit=500)
    for request in rows:
        await change_status(session, request, RequestStatus.EXPIRED, actor=actor, origin=origin)
    return len(rows)


async def settle_stalled_mints(context: AppContext, session: AsyncSession, cutoff: datetime) -> int:
    """A mint whose outcome will never arrive: its process died, or its lease (``cutoff``) ran
    out. No key was handed out, so the request may be claimed again; the key Tailscale may
    have made is looked for and deleted first, while the mint still bars a second one."""
    rows = await lock_stalled_mints(session, cutoff)
    # Every upstream call before the first audit append: the chain lock is never held waiting.
    fates = [
        await delete_orphan_keys(context, mint_description(row.id), row.grant_id) for row in rows
    ]
    for request, fate in zip(rows, fates, strict=True):
        started = request.mint_started_at
        why = "its lease ran out" if started and started < cutoff else "its process is gone"
        request.mint_started_at = None
        request.mint_owner = None
        # A call still in flight when its process died may yet make a key: look once more.
        last_call_ends = (started or datetime.now(UTC)) + timedelta(
            seconds=context.settings.upstream_deadline_seconds
        )
        request.orphan_sweep_at = last_call_ends + ORPHAN_SWEEP_MARGIN
        await record_event(
            session,
            origin=ORIGIN_BACKGROUND,
            actor=WORKER,
            target=request_target(request, "MINT"),
            action="UPDATE",
            old={"mintStartedAt": format_time(started) if started else None},
            new={"mintStartedAt": None},
            details=f"a key mint with an unknown outcome was settled as {why}; {fate}; "
            "the request may be claimed again",
            user_id=request.user_id,
        )
        # Clearing mint_started_at wakes the request's long-polls (the table's trigger).
    return len(rows)


async def sweep_orphan_keys(context: AppContext, session: AsyncSession) -> int:
    """The last look for a settled mint's key, once every call it made has ended: a key made
    after the first look is deleted too, never the key the request handed out since."""
    rows = await lock_due_orphan_sweeps(session, datetime.now(UTC), ORPHAN_SWEEPS_PER_RUN)
    fates = [
        await delete_orphan_keys(context, mint_description(row.id), row.grant_id, row.key_id)
        for row in rows
    ]
    for request, fate in zip(rows, fates, strict=True):
        request.orphan_sweep_at = None
        await record_event(
            session,
            origin=ORIGIN_BACKGROUND,
            actor=WORKER,
            target=request_target(request, "MINT"),
            action="UPDATE",
            details=f"a last look for the key of a settled mint: {fate}",
            user_id=request.user_id,
        )
    return len(rows)
