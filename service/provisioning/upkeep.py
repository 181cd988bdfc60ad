"""The provisioning side of the background jobs: expiry, and mints that never settled.

Each takes the job's session and only flushes; the job loop owns the transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.events import ORIGIN_BACKGROUND, WORKER, Actor, format_time, record_event
from service.provisioning.notify import notify_request_changed
from service.provisioning.status import RequestStatus
from service.provisioning.store import lock_overdue_requests, lock_stalled_mints
from service.provisioning.transitions import change_status, request_target


async def expire_overdue_requests(session: AsyncSession, actor: Actor, origin: str) -> int:
    """Open requests past their consent window or key expiry become ``expired``."""
    rows = await lock_overdue_requests(session, datetime.now(UTC), limit=500)
    for request in rows:
        await change_status(session, request, RequestStatus.EXPIRED, actor=actor, origin=origin)
    return len(rows)


async def settle_stalled_mints(session: AsyncSession, cutoff: datetime) -> int:
    """A mint whose outcome never arrived in time: its claim gave up (or its process died)
    without handing out a key, so the request may be claimed again."""
    rows = await lock_stalled_mints(session, cutoff)
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
    return len(rows)
