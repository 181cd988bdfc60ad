"""Bodies of the webhook endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, JsonValue, Strict

from service.models import WebhookDelivery, WebhookEndpoint
from service.web.fields import StrictBody
from service.webhooks.status import DeliveryStatus, EndpointStatus, WebhookEventType


class WebhookCreate(StrictBody):
    """An endpoint to register: where to send, and which events."""

    url: str = Field(
        min_length=1,
        max_length=2048,
        description="https (plain http only to loopback in development); private, link-local "
        "and metadata addresses are refused unless WEBHOOK_ALLOWED_NETWORKS lists them.",
    )
    # Strict bodies take JSON types as they are; an event type arrives as its string.
    events: list[Annotated[WebhookEventType, Strict(False)]] = Field(
        min_length=1, max_length=len(WebhookEventType), description="The event types to send."
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://hooks.example.com/tsprov",
                    "events": ["provisioning_request.ready", "grant.revoked"],
                }
            ]
        },
    )


EXAMPLE_WEBHOOK: dict[str, JsonValue] = {
    "id": "6b1f0c2e-3d4a-4b5c-8d9e-0f1a2b3c4d5e",
    "url": "https://hooks.example.com/tsprov",
    "events": ["provisioning_request.ready", "grant.revoked"],
    "status": "active",
    "created_by": "ops-admin",
    "created_at": "2026-11-28T20:00:00.000000Z",
    "updated_at": "2026-11-28T20:00:00.000000Z",
}
EXAMPLE_DELIVERY: dict[str, JsonValue] = {
    "id": "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",
    "webhook_id": "msg_0b7c2a52-3f43-4a4b-9d0e-6a1f8f0c7a11",
    "type": "provisioning_request.ready",
    "status": "delivered",
    "attempts": 1,
    "next_attempt_at": None,
    "last_status_code": 204,
    "last_error": None,
    "delivered_at": "2026-11-28T20:16:03.400000Z",
    "created_at": "2026-11-28T20:16:03.120455Z",
}


class WebhookOut(BaseModel):
    """A registered endpoint; never its secret."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_WEBHOOK]})

    id: uuid.UUID = Field(description="The endpoint's id.")
    url: str = Field(description="Where events are sent.")
    events: list[str] = Field(description="The event types it receives.")
    status: EndpointStatus = Field(
        description="`active`, or `disabled` after its deliveries failed for a whole window."
    )
    created_by: str = Field(description="The caller that registered it.")
    created_at: datetime = Field(description="When it was registered.")
    updated_at: datetime = Field(description="When it last changed.")

    @classmethod
    def of(cls, endpoint: WebhookEndpoint) -> WebhookOut:
        return cls(
            id=endpoint.id,
            url=endpoint.url,
            events=list(endpoint.events),
            status=endpoint.status,
            created_by=endpoint.created_by,
            created_at=endpoint.created_at,
            updated_at=endpoint.updated_at,
        )


class WebhookWithSecret(WebhookOut):
    """The endpoint and its signing secret, answered once: at creation and at rotation."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{**EXAMPLE_WEBHOOK, "secret": "whsec_…"}]}
    )

    secret: str = Field(description="`whsec_…`; shown only in this answer")


class WebhookList(BaseModel):
    """Every registered endpoint."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [EXAMPLE_WEBHOOK]}]})

    items: list[WebhookOut] = Field(description="The endpoints, newest first.")


class DeliveryOut(BaseModel):
    """One event to one endpoint, and how its attempts went."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_DELIVERY]})

    id: uuid.UUID = Field(description="The delivery's id (for redeliver).")
    webhook_id: str = Field(description="the `webhook-id` header: the same on every attempt")
    type: str = Field(description="The event type.")
    status: DeliveryStatus = Field(description="`pending`, `delivered` or `failed`.")
    attempts: int = Field(description="Attempts made so far.")
    next_attempt_at: datetime | None = Field(description="When the next attempt is due.")
    last_status_code: int | None = Field(description="The endpoint's last HTTP status.")
    last_error: str | None = Field(description="Why the last attempt failed, if it did.")
    delivered_at: datetime | None = Field(description="When the endpoint accepted it.")
    created_at: datetime = Field(description="When the event was written.")

    @classmethod
    def of(cls, delivery: WebhookDelivery, event_type: str, webhook_id: str) -> DeliveryOut:
        pending = delivery.status == DeliveryStatus.PENDING
        return cls(
            id=delivery.id,
            webhook_id=webhook_id,
            type=event_type,
            status=delivery.status,
            attempts=delivery.attempts,
            next_attempt_at=delivery.next_attempt_at if pending else None,
            last_status_code=delivery.last_status_code,
            last_error=delivery.last_error,
            delivered_at=delivery.delivered_at,
            created_at=delivery.created_at,
        )


class DeliveryList(BaseModel):
    """An endpoint's newest deliveries."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [EXAMPLE_DELIVERY]}]})

    items: list[DeliveryOut] = Field(description="Newest first, up to 100.")
