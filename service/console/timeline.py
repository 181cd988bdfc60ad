"""A provisioning request's history: its audit events, in order, as a page lists them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.query import AuditFilter, query_audit
from service.models import ProvisioningRequest

# A request's life is short (a consent window, a key's expiry, a join): this many events
# cover it many times over.
TIMELINE_LIMIT = 200


@dataclass(frozen=True)
class TimelineEntry:
    """One event, in words a person reads."""

    at: str
    event: str
    actor: str
    what: str
    error: str
    upstream_group: str | None


async def request_timeline(
    session: AsyncSession, request: ProvisioningRequest
) -> list[TimelineEntry]:
    """The events about the request and its device, oldest first.

    Read through the audit query with the user's id (an indexed column) and a window from
    the request's creation, filtered to targets naming the request or its device.
    """
    targets = [str(request.id), *([request.device_node_id] if request.device_node_id else [])]
    window = AuditFilter(
        start=request.created_at - timedelta(seconds=1),
        end=datetime.now(UTC) + timedelta(minutes=1),
        targets=targets,
        user_id=request.user_id,
    )
    page = await query_audit(session, window, limit=TIMELINE_LIMIT)
    return [_entry(event) for event in page.logs]


def _entry(event: dict[str, Any]) -> TimelineEntry:
    change = ""
    if event.get("old") is not None or event.get("new") is not None:
        change = f"{_shown(event.get('old'))} → {_shown(event.get('new'))}"
    details = event.get("actionDetails") or ""
    return TimelineEntry(
        at=str(event["eventTime"]),
        event=str(event.get("eventName") or event.get("action")),
        actor=str(event.get("actor", {}).get("loginName", "")),
        what="; ".join(part for part in (change, details) if part),
        error=str(event.get("error") or ""),
        upstream_group=event.get("upstreamEventGroupID"),
    )


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, dict):
        return ", ".join(f"{key}: {item}" for key, item in value.items())
    return str(value)
