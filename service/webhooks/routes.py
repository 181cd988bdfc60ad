"""``/v1/webhooks`` (admin): register endpoints, rotate their secrets, read and redo
deliveries."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Response

from service.audit.events import ORIGIN_API, caller_actor
from service.models import WebhookEndpoint
from service.web.deps import AdminCaller, ContextDep, KeyRingDep, SessionDep
from service.web.errors import Conflict, NotFound, ValidationFailed
from service.web.openapi import problem_responses
from service.webhooks import outbox, store
from service.webhooks.destinations import RefusedDestination
from service.webhooks.endpoints import endpoint_deliveries, register_endpoint
from service.webhooks.schemas import (
    DeliveryList,
    DeliveryOut,
    WebhookCreate,
    WebhookList,
    WebhookOut,
    WebhookWithSecret,
)
from service.webhooks.status import EndpointStatus

WebhookId = Annotated[
    uuid.UUID,
    Path(description="The endpoint's id", examples=["6b1f0c2e-3d4a-4b5c-8d9e-0f1a2b3c4d5e"]),
]
DeliveryId = Annotated[
    uuid.UUID,
    Path(description="The delivery's id", examples=["9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d"]),
]
router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


async def _endpoint(
    session: SessionDep, webhook_id: uuid.UUID, *, lock: bool = True
) -> WebhookEndpoint:
    endpoint = await store.load_endpoint(session, webhook_id, lock=lock)
    if endpoint is None:
        raise NotFound("No such webhook.")
    return endpoint


@router.post(
    "",
    status_code=201,
    response_model=WebhookWithSecret,
    summary="Register an endpoint; its signing secret is in this answer only",
    responses=problem_responses("validation_failed", "encryption_unavailable"),
)
async def create_webhook(
    body: WebhookCreate,
    context: ContextDep,
    session: SessionDep,
    key_ring: KeyRingDep,
    caller: AdminCaller,
    response: Response,
) -> WebhookWithSecret:
    """Events go out signed per the Standard Webhooks spec. Needs `admin`."""
    actor = caller_actor(caller.id, caller.name)
    try:
        endpoint, secret = await register_endpoint(
            session,
            context.settings,
            key_ring,
            body.url,
            body.events,
            actor=actor,
            origin=ORIGIN_API,
        )
    except RefusedDestination as exc:
        raise ValidationFailed(f"url refused: {exc}") from exc
    response.headers["Cache-Control"] = "no-store"
    return WebhookWithSecret(**WebhookOut.of(endpoint).model_dump(), secret=secret)


@router.get(
    "",
    response_model=WebhookList,
    summary="Registered endpoints, never their secrets",
    responses=problem_responses(),
)
async def list_webhooks(session: SessionDep, caller: AdminCaller) -> WebhookList:
    """Every endpoint with its events and status. Needs `admin`."""
    return WebhookList(items=[WebhookOut.of(e) for e in await store.list_endpoints(session)])


@router.delete(
    "/{webhook_id}",
    status_code=204,
    summary="Remove an endpoint and its deliveries",
    responses=problem_responses("not_found", "validation_failed"),
)
async def delete_webhook(
    webhook_id: WebhookId, session: SessionDep, caller: AdminCaller
) -> Response:
    """Nothing more is sent to it. Needs `admin`."""
    endpoint = await _endpoint(session, webhook_id)
    actor = caller_actor(caller.id, caller.name)
    await store.delete_endpoint(session, endpoint, actor=actor, origin=ORIGIN_API)
    return Response(status_code=204)


@router.post(
    "/{webhook_id}/rotate-secret",
    response_model=WebhookWithSecret,
    summary="Replace the signing secret at once; the new one is in this answer only",
    responses=problem_responses("not_found", "validation_failed", "encryption_unavailable"),
)
async def rotate_webhook_secret(
    webhook_id: WebhookId,
    session: SessionDep,
    key_ring: KeyRingDep,
    caller: AdminCaller,
    response: Response,
) -> WebhookWithSecret:
    """The old secret stops signing at once: deploy the new one right away. Needs `admin`."""
    endpoint = await _endpoint(session, webhook_id)
    actor = caller_actor(caller.id, caller.name)
    secret = await store.rotate_secret(session, key_ring, endpoint, actor=actor, origin=ORIGIN_API)
    response.headers["Cache-Control"] = "no-store"
    return WebhookWithSecret(**WebhookOut.of(endpoint).model_dump(), secret=secret)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=DeliveryList,
    summary="The endpoint's newest deliveries (up to 100), newest first",
    responses=problem_responses("not_found", "validation_failed"),
)
async def list_deliveries(
    webhook_id: WebhookId, session: SessionDep, caller: AdminCaller
) -> DeliveryList:
    """Each event sent to the endpoint, its attempts and last answer. Needs `admin`."""
    await _endpoint(session, webhook_id, lock=False)
    return await endpoint_deliveries(session, webhook_id)


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=DeliveryOut,
    summary="Send a delivery again, with the same webhook-id and a fresh retry window",
    responses=problem_responses("not_found", "conflict", "validation_failed"),
)
async def redeliver(
    webhook_id: WebhookId, delivery_id: DeliveryId, session: SessionDep, caller: AdminCaller
) -> DeliveryOut:
    """Queue the delivery again now; a delivery still being tried answers 409. Needs `admin`."""
    endpoint = await _endpoint(session, webhook_id)
    if endpoint.status != EndpointStatus.ACTIVE:
        raise Conflict("This webhook is disabled; register its URL again to receive events.")
    try:
        delivery = await outbox.redeliver(session, webhook_id, delivery_id)
    except outbox.StillPending as exc:
        raise Conflict(str(exc)) from exc
    if delivery is None:
        raise NotFound("No such delivery for this webhook.")
    event_type = await outbox.event_type_of(session, delivery.event_id)
    return DeliveryOut.of(delivery, event_type, outbox.message_id(delivery.event_id))
