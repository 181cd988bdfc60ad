"""The webhook tables: endpoints, the outbox of events, and each event's deliveries."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from service.columns import now_column, string_enum, uuid_pk
from service.db import Base
from service.webhooks.status import DeliveryStatus, EndpointStatus


class WebhookEndpoint(Base):
    """A URL an admin registered for events; its signing secret is sealed."""

    __tablename__ = "webhook_endpoint"

    id: Mapped[uuid.UUID] = uuid_pk()
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(ARRAY(Text))
    status: Mapped[EndpointStatus] = mapped_column(string_enum(EndpointStatus, 16))
    secret_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    # A delivery that fails for its whole retry window disables the endpoint only when
    # nothing else reached it meanwhile.
    last_delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = now_column()
    updated_at: Mapped[datetime] = now_column()


class WebhookEvent(Base):
    """The outbox: one event, written in the transaction of the change it reports."""

    __tablename__ = "webhook_event"

    id: Mapped[uuid.UUID] = uuid_pk()
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = now_column()


class WebhookDelivery(Base):
    """One event to one endpoint: attempts, the next one, and the last answer."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        Index("ix_webhook_delivery_due", "status", "next_attempt_at"),
        Index("ix_webhook_delivery_endpoint_created", "endpoint_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_event.id", ondelete="CASCADE"), index=True
    )
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_endpoint.id", ondelete="CASCADE")
    )
    status: Mapped[DeliveryStatus] = mapped_column(string_enum(DeliveryStatus, 16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Set by the first attempt (and cleared by a redeliver): past it, failures are final.
    retry_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(200))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = now_column()
    updated_at: Mapped[datetime] = now_column()
