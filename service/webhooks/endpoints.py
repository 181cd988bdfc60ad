"""Registering and reading webhook endpoints, for the API and the CLI alike."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.events import Actor
from service.crypto.keyring import KeyRing
from service.models import WebhookEndpoint
from service.settings import Settings
from service.webhooks import outbox, store
from service.webhooks.destinations import check_destination
from service.webhooks.schemas import DeliveryList, DeliveryOut
from service.webhooks.status import WebhookEventType
from service.webhooks.subscriptions import forget_when_committed

DELIVERY_PAGE = 100


async def register_endpoint(
    session: AsyncSession,
    settings: Settings,
    key_ring: KeyRing,
    url: str,
    events: list[WebhookEventType],
    *,
    actor: Actor,
    origin: str,
) -> tuple[WebhookEndpoint, str]:
    """Check the URL's destination (``RefusedDestination`` if refused), then store it."""
    await check_destination(url, settings)
    forget_when_committed(session)
    return await store.create_endpoint(session, key_ring, url, events, actor=actor, origin=origin)


async def endpoint_deliveries(session: AsyncSession, endpoint_id: uuid.UUID) -> DeliveryList:
    """The newest deliveries to an endpoint, with the event each carried."""
    rows = await outbox.list_deliveries(session, endpoint_id, DELIVERY_PAGE)
    return DeliveryList(
        items=[
            DeliveryOut.of(delivery, event_type, outbox.message_id(delivery.event_id))
            for delivery, event_type in rows
        ]
    )
