"""Requests across every user, for operators: filtered pages, and one request's timeline."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.query import events_about
from service.grants.store import grants_by_id, load_grant
from service.models import ConsentGrant, ProvisioningRequest
from service.provisioning.reading import decode_cursor, encode_cursor
from service.provisioning.status import FINAL_STATUSES
from service.provisioning.store import RequestFilter, load_request, page_of_requests

# An event is stamped no earlier than the newest one already committed (events.py), so it
# can trail the row's own timestamps a little when replicas' clocks differ.
CLOCK_SLACK = timedelta(seconds=30)
TIMELINE_LIMIT = 500


@dataclass(frozen=True)
class RequestPage:
    rows: list[ProvisioningRequest]
    grants: dict[uuid.UUID, ConsentGrant]
    next_cursor: str | None


@dataclass(frozen=True)
class RequestTimeline:
    request: ProvisioningRequest
    grant: ConsentGrant | None
    events: list[dict[str, Any]]


async def requests_page(
    session: AsyncSession, wanted: RequestFilter, limit: int, cursor: str | None
) -> RequestPage:
    """Newest first, keyset-paginated on (created_at, id) like the callers' list."""
    after = decode_cursor(cursor) if cursor else None
    rows = await page_of_requests(session, wanted, limit, after)
    page = rows[:limit]
    last = page[-1] if len(rows) > limit else None
    grants = await grants_by_id(session, (row.grant_id for row in page))
    next_cursor = encode_cursor(last.created_at, last.id) if last else None
    return RequestPage(page, grants, next_cursor)


def _timeline_targets(request: ProvisioningRequest) -> list[str]:
    """What the request's events name: itself, its grant, its key and its device."""
    named = [request.id, request.grant_id, request.key_id, request.device_node_id]
    return [str(target) for target in named if target]


async def request_timeline(session: AsyncSession, request_id: uuid.UUID) -> RequestTimeline:
    """Every audit event of the request's life, in order, with Tailscale's event for each
    that was linked. A reusable grant serves many requests: only its events while this
    request was open are shown."""
    request = await load_request(session, request_id)
    ended = request.updated_at if request.status in FINAL_STATUSES else datetime.now(UTC)
    window = (request.created_at - CLOCK_SLACK, ended + CLOCK_SLACK)
    events = await events_about(
        session, request.user_id, _timeline_targets(request), window, limit=TIMELINE_LIMIT
    )
    return RequestTimeline(request, await load_grant(session, request.grant_id), events)
