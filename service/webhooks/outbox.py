"""The outbox: every query on ``webhook_event`` and ``webhook_delivery``.

An event is written in the transaction of the change it reports, one delivery per endpoint
that asked for it, and a NOTIFY wakes the sender when (and only if) that transaction
commits. These functions take a session and only flush.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.events import format_time
from service.db import rows_changed
from service.models import WebhookDelivery, WebhookEvent
from service.webhooks.status import DeliveryStatus, WebhookEventType
from service.webhooks.store import subscribed_endpoint_ids
from service.webhooks.subscriptions import kept_for

CHANNEL = "tsprov_webhook_queued"
LAST_ERROR_LENGTH = 200
# How long a finished delivery stays in its endpoint's log (and can be redelivered).
DELIVERY_KEEP = timedelta(days=30)


async def publish_event(
    session: AsyncSession, event_type: WebhookEventType, data: dict[str, Any]
) -> None:
    """Queue ``event_type`` for every endpoint subscribed to it; nothing when none is."""
    kept = kept_for(session)
    if kept is not None and not await kept.may_be_wanted(session, event_type):
        return
    endpoint_ids = await subscribed_endpoint_ids(session, event_type)
    if not endpoint_ids:
        return
    now = datetime.now(UTC)
    payload = {"type": str(event_type), "timestamp": format_time(now), "data": data}
    event = WebhookEvent(id=uuid.uuid4(), type=str(event_type), payload=payload, created_at=now)
    session.add(event)
    await session.flush()  # the deliveries refer to it
    for endpoint_id in endpoint_ids:
        session.add(
            WebhookDelivery(
                id=uuid.uuid4(),
                event_id=event.id,
                endpoint_id=endpoint_id,
                status=DeliveryStatus.PENDING,
                attempts=0,
                next_attempt_at=now,
            )
        )
    await session.flush()
    await wake_sender(session)


async def wake_sender(session: AsyncSession) -> None:
    """Postgres sends this when the transaction commits, to every replica's sender."""
    await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})


class StillPending(ValueError):
    """A redeliver asked of a delivery that is still being tried."""


@dataclass(frozen=True)
class ClaimedDelivery:
    """A delivery leased for one attempt, with what the attempt sends."""

    id: uuid.UUID
    endpoint_id: uuid.UUID
    message_id: str
    payload: dict[str, Any]
    attempts: int
    retry_until: datetime


async def claim_due_deliveries(
    session: AsyncSession, *, lease: timedelta, window: timedelta, limit: int
) -> list[ClaimedDelivery]:
    """Due deliveries, leased: another replica skips them, and a crash retries them later."""
    now = datetime.now(UTC)
    rows = await session.execute(
        select(WebhookDelivery, WebhookEvent.payload)
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .where(
            WebhookDelivery.status == DeliveryStatus.PENDING,
            WebhookDelivery.next_attempt_at <= now,
        )
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
        .with_for_update(of=WebhookDelivery, skip_locked=True)
    )
    claimed = []
    for delivery, payload in rows:
        delivery.attempts += 1
        delivery.next_attempt_at = now + lease
        delivery.retry_until = delivery.retry_until or now + window
        delivery.updated_at = now
        claimed.append(
            ClaimedDelivery(
                delivery.id,
                delivery.endpoint_id,
                message_id(delivery.event_id),
                payload,
                delivery.attempts,
                delivery.retry_until,
            )
        )
    await session.flush()
    return claimed


def message_id(event_id: uuid.UUID) -> str:
    """The ``webhook-id``: the event's, the same on every attempt and redelivery."""
    return f"msg_{event_id.hex}"


async def seconds_until_next_due(session: AsyncSession) -> float | None:
    """How long until the earliest pending delivery is due; None when none is pending."""
    earliest = await session.scalar(
        select(func.min(WebhookDelivery.next_attempt_at)).where(
            WebhookDelivery.status == DeliveryStatus.PENDING
        )
    )
    if earliest is None:
        return None
    return max(0.0, (earliest - datetime.now(UTC)).total_seconds())


async def record_attempt(
    session: AsyncSession,
    delivery_id: uuid.UUID,
    *,
    status: DeliveryStatus,
    status_code: int | None,
    error: str,
    next_attempt_at: datetime | None = None,
) -> None:
    """What one attempt got: delivered, failed for good, or pending until ``next_attempt_at``."""
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "status": status,
        "last_status_code": status_code,
        "last_error": error[:LAST_ERROR_LENGTH] or None,
        "updated_at": now,
    }
    if status == DeliveryStatus.DELIVERED:
        values["delivered_at"] = now
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    await session.execute(
        update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(**values)
    )


async def fail_pending_deliveries(session: AsyncSession, endpoint_id: uuid.UUID) -> int:
    """An endpoint was disabled: what it still had waiting will not be sent."""
    result = await session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.status == DeliveryStatus.PENDING,
        )
        .values(status=DeliveryStatus.FAILED, last_error="endpoint disabled")
    )
    return rows_changed(result)


async def list_deliveries(
    session: AsyncSession, endpoint_id: uuid.UUID, limit: int
) -> list[tuple[WebhookDelivery, str]]:
    """An endpoint's deliveries, newest first, each with its event type."""
    rows = await session.execute(
        select(WebhookDelivery, WebhookEvent.type)
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.endpoint_id == endpoint_id)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
        .limit(limit)
    )
    return [(delivery, event_type) for delivery, event_type in rows]


async def redeliver(
    session: AsyncSession, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
) -> WebhookDelivery | None:
    """Send a finished delivery again now, with a fresh retry window; None when it is not
    this endpoint's, ``StillPending`` while it is being tried."""
    delivery = await session.scalar(
        select(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint_id)
        .with_for_update()
    )
    if delivery is None:
        return None
    if delivery.status == DeliveryStatus.PENDING:
        # Its attempt in flight would record over this reset when it ends.
        raise StillPending("This delivery is still being tried; redeliver it once it ends.")
    now = datetime.now(UTC)
    delivery.status = DeliveryStatus.PENDING
    delivery.next_attempt_at = now
    delivery.retry_until = None
    delivery.updated_at = now
    await session.flush()
    await wake_sender(session)
    return delivery


async def event_type_of(session: AsyncSession, event_id: uuid.UUID) -> str:
    event_type = await session.scalar(select(WebhookEvent.type).where(WebhookEvent.id == event_id))
    return event_type or ""


async def purge_finished_deliveries(session: AsyncSession) -> int:
    """Deliveries finished a while ago, then events no delivery refers to any more."""
    cutoff = datetime.now(UTC) - DELIVERY_KEEP
    finished = await session.execute(
        delete(WebhookDelivery).where(
            WebhookDelivery.status != DeliveryStatus.PENDING,
            WebhookDelivery.updated_at < cutoff,
        )
    )
    referenced = select(WebhookDelivery.id).where(WebhookDelivery.event_id == WebhookEvent.id)
    orphans = await session.execute(
        delete(WebhookEvent).where(WebhookEvent.created_at < cutoff, ~referenced.exists())
    )
    return rows_changed(finished) + rows_changed(orphans)
