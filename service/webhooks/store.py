"""Webhook endpoints: every query on ``webhook_endpoint``, sealing secrets, and the audit of
each change. These functions take a session and only flush."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.events import Actor, Target, record_event
from service.crypto.keyring import KeyRing
from service.crypto.sealed import webhook_secret_context
from service.models import WebhookEndpoint
from service.webhooks.signing import new_secret
from service.webhooks.status import EndpointStatus, WebhookEventType


def endpoint_target(endpoint: WebhookEndpoint, prop: str = "") -> Target:
    return Target(id=str(endpoint.id), name=endpoint.url, type="WEBHOOK", property=prop)


def _seal_new_secret(endpoint: WebhookEndpoint, key_ring: KeyRing) -> str:
    secret = new_secret()
    endpoint.secret_ciphertext = key_ring.encrypt_text(secret, webhook_secret_context(endpoint))
    return secret


def open_secret(endpoint: WebhookEndpoint, key_ring: KeyRing) -> str:
    if endpoint.secret_ciphertext is None:
        raise ValueError("the endpoint has no secret")
    return key_ring.decrypt_text(endpoint.secret_ciphertext, webhook_secret_context(endpoint))


async def create_endpoint(
    session: AsyncSession,
    key_ring: KeyRing,
    url: str,
    events: Iterable[WebhookEventType],
    *,
    actor: Actor,
    origin: str,
) -> tuple[WebhookEndpoint, str]:
    """A new active endpoint and its secret, which is shown this once."""
    endpoint = WebhookEndpoint(
        id=uuid.uuid4(),
        url=url,
        events=sorted({str(event) for event in events}),
        status=EndpointStatus.ACTIVE,
        created_by=actor.login_name[:64],
    )
    secret = _seal_new_secret(endpoint, key_ring)
    session.add(endpoint)
    await session.flush()
    await record_event(
        session,
        origin=origin,
        actor=actor,
        target=endpoint_target(endpoint),
        action="CREATE",
        new={"events": endpoint.events, "status": endpoint.status},
    )
    return endpoint, secret


async def list_endpoints(session: AsyncSession) -> list[WebhookEndpoint]:
    query = select(WebhookEndpoint).order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    return list(await session.scalars(query))


async def load_endpoint(
    session: AsyncSession, endpoint_id: uuid.UUID, *, lock: bool = False
) -> WebhookEndpoint | None:
    query = select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
    return await session.scalar(query.with_for_update() if lock else query)


async def endpoints_by_id(
    session: AsyncSession, endpoint_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, WebhookEndpoint]:
    wanted = set(endpoint_ids)
    if not wanted:
        return {}
    rows = await session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.id.in_(wanted)))
    return {row.id: row for row in rows}


async def subscribed_endpoint_ids(
    session: AsyncSession, event_type: WebhookEventType
) -> list[uuid.UUID]:
    """The active endpoints that asked for ``event_type``."""
    query = select(WebhookEndpoint.id).where(
        WebhookEndpoint.status == EndpointStatus.ACTIVE,
        WebhookEndpoint.events.contains([str(event_type)]),
    )
    return list(await session.scalars(query))


async def subscribed_event_types(session: AsyncSession) -> frozenset[str]:
    """Every event type some active endpoint asks for."""
    query = select(func.unnest(WebhookEndpoint.events)).where(
        WebhookEndpoint.status == EndpointStatus.ACTIVE
    )
    return frozenset(await session.scalars(query.distinct()))


async def delete_endpoint(
    session: AsyncSession, endpoint: WebhookEndpoint, *, actor: Actor, origin: str
) -> None:
    """Remove the endpoint; its deliveries go with it."""
    target = endpoint_target(endpoint)
    await session.delete(endpoint)
    await session.flush()
    await record_event(session, origin=origin, actor=actor, target=target, action="DELETE")


async def rotate_secret(
    session: AsyncSession,
    key_ring: KeyRing,
    endpoint: WebhookEndpoint,
    *,
    actor: Actor,
    origin: str,
) -> str:
    """A new secret replaces the old at once; it is shown this once."""
    secret = _seal_new_secret(endpoint, key_ring)
    endpoint.updated_at = datetime.now(UTC)
    await session.flush()
    await record_event(
        session,
        origin=origin,
        actor=actor,
        target=endpoint_target(endpoint, "SECRET"),
        action="UPDATE",
        details="signing secret rotated",
    )
    return secret


def note_delivered(endpoint: WebhookEndpoint, now: datetime) -> None:
    endpoint.last_delivered_at = now


def silent_since(endpoint: WebhookEndpoint, moment: datetime) -> bool:
    """True when nothing has reached the endpoint since ``moment``."""
    return endpoint.last_delivered_at is None or endpoint.last_delivered_at < moment


async def disable_endpoint(
    session: AsyncSession, endpoint: WebhookEndpoint, *, actor: Actor, origin: str, error: str
) -> None:
    """Stop sending to an endpoint that keeps failing, and say so in the audit trail."""
    old = endpoint.status
    endpoint.status = EndpointStatus.DISABLED
    endpoint.updated_at = datetime.now(UTC)
    await session.flush()
    await record_event(
        session,
        origin=origin,
        actor=actor,
        target=endpoint_target(endpoint, "STATUS"),
        action="UPDATE",
        old=old,
        new=endpoint.status,
        error=error,
    )
