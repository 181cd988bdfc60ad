"""The sender's rules, one pass at a time over the test's rolled-back transaction: events
queued with their change, failures retried until the window closes, a dead endpoint disabled
and audited."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.audit.events import WORKER, caller_actor
from service.crypto.keyring import KeyRing
from service.grants.status import GrantStatus
from service.grants.store import set_grant_status, store_grant
from service.models import AuditEvent, WebhookDelivery, WebhookEvent
from service.state import AppContext
from service.webhooks.delivery import deliver_due
from service.webhooks.outbox import purge_finished_deliveries
from service.webhooks.status import DeliveryStatus, EndpointStatus, WebhookEventType
from service.webhooks.store import create_endpoint, load_endpoint
from tests.conftest import CallerFactory, bearer
from tests.helpers.api_calls import one_time_token
from tests.helpers.webhook_receiver import WebhookReceiver

ADMIN = caller_actor(uuid.uuid4(), "webhook-admin")


async def register(
    sessions: async_sessionmaker[AsyncSession], key_ring: KeyRing, url: str
) -> uuid.UUID:
    async with sessions() as session, session.begin():
        endpoint, _ = await create_endpoint(
            session,
            key_ring,
            url,
            [WebhookEventType.GRANT_REVOKED],
            actor=ADMIN,
            origin="CONFIG_API",
        )
    return endpoint.id


async def revoke_a_grant(
    sessions: async_sessionmaker[AsyncSession], key_ring: KeyRing, *, commit: bool = True
) -> uuid.UUID:
    """A grant revoked; with ``commit=False`` the change (and so its event) rolls back."""
    async with sessions() as session:
        await session.begin()
        grant = await store_grant(
            session,
            key_ring,
            one_time_token(),
            user_id=f"u-{uuid.uuid4().hex[:8]}",
            scope="auth_keys:create:once",
            actor=ADMIN,
            origin="CONFIG_API",
        )
        await set_grant_status(
            session, grant, GrantStatus.REVOKED, actor=ADMIN, origin="CONFIG_API", action="REVOKE"
        )
        await (session.commit() if commit else session.rollback())
    return grant.id


async def deliveries_of(
    sessions: async_sessionmaker[AsyncSession], endpoint_id: uuid.UUID
) -> list[WebhookDelivery]:
    async with sessions() as session:
        query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
        return list(await session.scalars(query))


async def test_an_event_is_queued_only_when_its_change_commits(
    context: AppContext, sessions: async_sessionmaker[AsyncSession], key_ring: KeyRing
) -> None:
    endpoint_id = await register(sessions, key_ring, "https://93.184.216.34/hook")
    await revoke_a_grant(sessions, key_ring, commit=False)
    assert await deliveries_of(sessions, endpoint_id) == []
    await revoke_a_grant(sessions, key_ring)
    [queued] = await deliveries_of(sessions, endpoint_id)
    assert queued.status == DeliveryStatus.PENDING


async def test_an_endpoint_failing_for_a_whole_window_is_disabled_and_audited(
    context: AppContext, sessions: async_sessionmaker[AsyncSession], key_ring: KeyRing
) -> None:
    context.settings = context.settings.model_copy(
        update={"webhook_retry_base_seconds": 0.05, "webhook_retry_window_seconds": 0.5}
    )
    with WebhookReceiver(statuses=[500] * 100) as receiver:
        endpoint_id = await register(sessions, key_ring, receiver.url)
        await revoke_a_grant(sessions, key_ring)
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                [delivery] = await deliveries_of(sessions, endpoint_id)
                if delivery.status != DeliveryStatus.PENDING:
                    break
                await deliver_due(context, http)
                await asyncio.sleep(0.02)
        attempts = len(receiver.app.snapshot())

    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == attempts > 2
    assert delivery.last_status_code == 500
    async with sessions() as session:
        endpoint = await load_endpoint(session, endpoint_id)
        assert endpoint is not None
        assert endpoint.status == EndpointStatus.DISABLED
        disabled = await session.scalar(
            select(AuditEvent).where(
                AuditEvent.target["id"].astext == str(endpoint_id),
                AuditEvent.event_name == "WEBHOOK.UPDATE",
            )
        )
    assert disabled is not None
    assert disabled.actor["id"] == WORKER.id
    assert disabled.new == "disabled"
    assert "HTTP 500" in disabled.error

    # Nothing more is queued for it.
    await revoke_a_grant(sessions, key_ring)
    assert len(await deliveries_of(sessions, endpoint_id)) == 1


async def test_an_endpoint_answering_again_is_not_disabled_by_an_older_failure(
    context: AppContext, sessions: async_sessionmaker[AsyncSession], key_ring: KeyRing
) -> None:
    context.settings = context.settings.model_copy(
        update={"webhook_retry_base_seconds": 10, "webhook_retry_window_seconds": 0.2}
    )
    with WebhookReceiver(statuses=[500]) as receiver:
        endpoint_id = await register(sessions, key_ring, receiver.url)
        await revoke_a_grant(sessions, key_ring)
        await revoke_a_grant(sessions, key_ring)
        async with httpx.AsyncClient() as http:
            await deliver_due(context, http)
    outcomes = sorted(d.status for d in await deliveries_of(sessions, endpoint_id))
    # The first failure came after more than the window would allow: it is final.
    assert outcomes == [DeliveryStatus.DELIVERED, DeliveryStatus.FAILED]
    async with sessions() as session:
        endpoint = await load_endpoint(session, endpoint_id)
    assert endpoint is not None
    assert endpoint.status == EndpointStatus.ACTIVE


async def test_finished_deliveries_leave_the_log_after_thirty_days(
    context: AppContext, sessions: async_sessionmaker[AsyncSession], key_ring: KeyRing
) -> None:
    endpoint_id = await register(sessions, key_ring, "https://93.184.216.34/hook")
    await revoke_a_grant(sessions, key_ring)
    await revoke_a_grant(sessions, key_ring)
    old, still_pending = await deliveries_of(sessions, endpoint_id)
    async with sessions() as session, session.begin():
        aged = datetime.now(UTC) - timedelta(days=31)
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint_id)
            .values(updated_at=aged, status=DeliveryStatus.PENDING)
        )
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == old.id)
            .values(status=DeliveryStatus.DELIVERED)
        )
        await session.execute(update(WebhookEvent).values(created_at=aged))
        assert await purge_finished_deliveries(session) == 2  # the delivery and its event

    [kept] = await deliveries_of(sessions, endpoint_id)
    assert kept.id == still_pending.id


async def test_only_a_finished_delivery_can_be_redelivered(
    client: httpx.AsyncClient,
    make_caller: CallerFactory,
    sessions: async_sessionmaker[AsyncSession],
    key_ring: KeyRing,
) -> None:
    admin = bearer(await make_caller("admin"))
    endpoint_id = await register(sessions, key_ring, "https://93.184.216.34/hook")
    await revoke_a_grant(sessions, key_ring)
    [delivery] = await deliveries_of(sessions, endpoint_id)
    redeliver = f"/v1/webhooks/{endpoint_id}/deliveries/{delivery.id}/redeliver"

    still_trying = await client.post(redeliver, headers=admin)
    assert still_trying.status_code == 409
    assert still_trying.json()["code"] == "conflict"

    async with sessions() as session, session.begin():
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery.id)
            .values(status=DeliveryStatus.FAILED)
        )
    again = await client.post(redeliver, headers=admin)
    assert again.status_code == 202
    assert again.json()["status"] == "pending"
    assert again.json()["webhook_id"] == f"msg_{delivery.event_id.hex}"
