"""One pass of the sender: lease what is due, send each attempt, record what it got.

A flow over the app state with short transactions of its own: the lease commits before any
request leaves, so no row lock is held across the network, and a crash between the send and
its record means the delivery is tried again after the lease: at least once, never lost.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.events import ORIGIN_BACKGROUND, WORKER
from service.db import transaction
from service.models import WebhookEndpoint
from service.settings import Settings
from service.state import AppContext
from service.webhooks import outbox, store
from service.webhooks.destinations import RefusedDestination, check_destination
from service.webhooks.outbox import ClaimedDelivery
from service.webhooks.signing import signed_headers
from service.webhooks.status import DeliveryStatus, EndpointStatus

BATCH = 20
LEASE_MARGIN = timedelta(seconds=30)


@dataclass(frozen=True)
class Attempt:
    delivery: ClaimedDelivery
    url: str
    secret: str


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def retry_delay(settings: Settings, attempts: int) -> timedelta:
    """Exponential backoff from the base, capped, with ±20 % jitter so retries spread out."""
    exponent = min(attempts - 1, 30)
    delay = min(
        settings.webhook_retry_base_seconds * 2**exponent,
        settings.webhook_retry_max_interval_seconds,
    )
    return timedelta(seconds=delay * random.uniform(0.8, 1.2))  # noqa: S311  (spread, not secrecy)


def body_of(delivery: ClaimedDelivery) -> bytes:
    """The same bytes on every attempt, whatever order the database keeps the keys in."""
    return json.dumps(delivery.payload, sort_keys=True, separators=(",", ":")).encode()


async def send_attempt(http: httpx.AsyncClient, settings: Settings, attempt: Attempt) -> Outcome:
    """POST the event to the checked address; any answer but a 2xx is a failure."""
    try:
        target = await check_destination(attempt.url, settings)
    except RefusedDestination as exc:
        return Outcome(None, f"refused: {exc}")
    body = body_of(attempt.delivery)
    headers = signed_headers(attempt.secret, attempt.delivery.message_id, int(time.time()), body)
    headers |= {"content-type": "application/json", "host": target.host_header}
    extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else {}
    try:
        # Streamed and never read: a receiver's answer body is not ours to hold.
        async with http.stream(
            "POST", target.url, content=body, headers=headers, extensions=extensions
        ) as answer:
            status = answer.status_code
    except httpx.HTTPError as exc:
        return Outcome(None, type(exc).__name__)
    return Outcome(status, "" if 200 <= status < 300 else f"HTTP {status}")


async def lease_due(context: AppContext) -> list[Attempt]:
    """Lease what is due, with each endpoint's URL and opened secret."""
    settings, key_ring = context.settings, context.require_key_ring()
    lease = timedelta(seconds=settings.webhook_timeout_seconds) + LEASE_MARGIN
    window = timedelta(seconds=settings.webhook_retry_window_seconds)
    async with transaction(context.sessions) as session:
        due = await outbox.claim_due_deliveries(session, lease=lease, window=window, limit=BATCH)
        endpoints = await store.endpoints_by_id(session, {d.endpoint_id for d in due})
        attempts = []
        for delivery in due:
            endpoint = endpoints.get(delivery.endpoint_id)
            if endpoint is None or endpoint.status != EndpointStatus.ACTIVE:
                # Disabled while this was queued: it will not be sent.
                await outbox.record_attempt(
                    session,
                    delivery.id,
                    status=DeliveryStatus.FAILED,
                    status_code=None,
                    error="endpoint disabled",
                )
                continue
            secret = store.open_secret(endpoint, key_ring)
            attempts.append(Attempt(delivery, endpoint.url, secret))
    return attempts


async def record_outcome(context: AppContext, attempt: Attempt, outcome: Outcome) -> None:
    """Delivered; or retried after a backoff; or, past its window, failed for good."""
    delivery = attempt.delivery
    async with transaction(context.sessions) as session:
        endpoint = await store.load_endpoint(session, delivery.endpoint_id, lock=True)
        if endpoint is None:
            return  # removed meanwhile, and its deliveries with it
        if outcome.delivered:
            await outbox.record_attempt(
                session,
                delivery.id,
                status=DeliveryStatus.DELIVERED,
                status_code=outcome.status_code,
                error="",
            )
            store.note_delivered(endpoint, datetime.now(UTC))
            return
        await _record_failure(session, context.settings, endpoint, delivery, outcome)


async def _record_failure(
    session: AsyncSession,
    settings: Settings,
    endpoint: WebhookEndpoint,
    delivery: ClaimedDelivery,
    outcome: Outcome,
) -> None:
    """Schedule the next try, or give up; a give-up disables an endpoint that nothing has
    reached since this delivery's first attempt, a whole window ago."""
    window = timedelta(seconds=settings.webhook_retry_window_seconds)
    next_at = datetime.now(UTC) + retry_delay(settings, delivery.attempts)
    final = next_at > delivery.retry_until
    await outbox.record_attempt(
        session,
        delivery.id,
        status=DeliveryStatus.FAILED if final else DeliveryStatus.PENDING,
        status_code=outcome.status_code,
        error=outcome.error,
        next_attempt_at=None if final else next_at,
    )
    silent = store.silent_since(endpoint, delivery.retry_until - window)
    if final and silent and endpoint.status == EndpointStatus.ACTIVE:
        await store.disable_endpoint(
            session,
            endpoint,
            actor=WORKER,
            origin=ORIGIN_BACKGROUND,
            error=f"no delivery succeeded for {window}; last: {outcome.error}",
        )
        await outbox.fail_pending_deliveries(session, endpoint.id)


async def deliver_due(context: AppContext, http: httpx.AsyncClient) -> int:
    """Send every due delivery once, side by side; how many were attempted."""
    attempts = await lease_due(context)
    outcomes = await asyncio.gather(
        *(send_attempt(http, context.settings, attempt) for attempt in attempts)
    )
    # Successes first: one answered attempt shows the endpoint alive to the failures after it.
    results = sorted(zip(attempts, outcomes, strict=True), key=lambda pair: not pair[1].delivered)
    for attempt, outcome in results:
        await record_outcome(context, attempt, outcome)
    return len(attempts)


async def seconds_until_next_due(context: AppContext) -> float | None:
    async with context.sessions() as session:
        return await outbox.seconds_until_next_due(session)
