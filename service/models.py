"""Tables. Secrets live only in ``*_ciphertext`` columns sealed by the key ring."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    func,
)
from sqlalchemy import Enum as SAEnum
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base
from service.grants.status import GrantMode, GrantStatus
from service.provisioning.status import RequestStatus
from service.webhooks.status import DeliveryStatus, EndpointStatus


def _uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)


def _string_enum(enum: type[StrEnum], length: int) -> SAEnum:
    """A StrEnum kept as its value in a plain VARCHAR: no database type to migrate."""
    return SAEnum(
        enum,
        native_enum=False,
        create_constraint=False,
        length=length,
        values_callable=lambda members: [member.value for member in members],
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _now() -> Mapped[datetime]:
    # The wall clock, not now(): now() is the transaction's start, the same for every row
    # a transaction writes, which would make "newest first" ambiguous.
    return mapped_column(DateTime(timezone=True), default=_utc_now, server_default=func.now())


class Caller(Base):
    """An internal service with an API key; only the key's hash is kept."""

    __tablename__ = "caller"

    id: Mapped[uuid.UUID] = _uuid_pk()
    name: Mapped[str] = mapped_column(String(64), unique=True)
    key_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text))
    user_patterns: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    created_at: Mapped[datetime] = _now()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class UserAccount(Base):
    """A person callers name by ``user_id``."""

    __tablename__ = "user_account"

    id: Mapped[uuid.UUID] = _uuid_pk()
    user_id: Mapped[str] = mapped_column(String(128), unique=True)
    tailscale_login: Mapped[str | None] = mapped_column(String(320))
    display_name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()


class ConsentGrant(Base):
    """What one consent yields: a one-time key, or access and refresh tokens."""

    __tablename__ = "consent_grant"
    __table_args__ = (Index("ix_consent_grant_user_status", "user_id", "status"),)

    id: Mapped[uuid.UUID] = _uuid_pk()
    user_id: Mapped[str] = mapped_column(String(128))
    mode: Mapped[GrantMode] = mapped_column(_string_enum(GrantMode, 16))
    status: Mapped[GrantStatus] = mapped_column(_string_enum(GrantStatus, 16))
    login_name: Mapped[str | None] = mapped_column(String(320))
    scope: Mapped[str] = mapped_column(String(200))
    token_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    refresh_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    token_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()


class ProvisioningRequest(Base):
    """A caller's ask for one device for one user, and its state machine."""

    __tablename__ = "provisioning_request"
    __table_args__ = (
        Index("ix_provisioning_request_user_created", "user_id", "created_at", "id"),
        Index("ix_provisioning_request_status", "status"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    user_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[RequestStatus] = mapped_column(_string_enum(RequestStatus, 24))
    hostname: Mapped[str | None] = mapped_column(String(63))
    description: Mapped[str | None] = mapped_column(String(50))
    return_to: Mapped[str | None] = mapped_column(String(512))
    ephemeral: Mapped[bool] = mapped_column(Boolean, default=False)
    preauthorized: Mapped[bool] = mapped_column(Boolean, default=False)
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    expiry_seconds: Mapped[int | None] = mapped_column(Integer)
    consent_token_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), unique=True)
    # Sealed so GET can show the link again while consent is awaited; wiped afterwards.
    consent_token_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    consent_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    grant_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("consent_grant.id"))
    key_id: Mapped[str | None] = mapped_column(String(64))
    key_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    mint_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    device_node_id: Mapped[str | None] = mapped_column(String(64))
    device_name: Mapped[str | None] = mapped_column(String(255))
    device_user: Mapped[str | None] = mapped_column(String(320))
    device_joined_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failure_reason: Mapped[str | None] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()


class ConsentFlow(Base):
    """One visit to a consent link: hashed state and browser binding, sealed PKCE verifier."""

    __tablename__ = "consent_flow"

    id: Mapped[uuid.UUID] = _uuid_pk()
    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("provisioning_request.id", ondelete="CASCADE"), index=True
    )
    state_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    browser_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    verifier_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = _now()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    consumed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class IdempotencyRecord(Base):
    """A caller's Idempotency-Key and the answer it earned, sealed (a claim holds a key)."""

    __tablename__ = "idempotency_record"

    id: Mapped[uuid.UUID] = _uuid_pk()
    caller_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("caller.id", ondelete="CASCADE"))
    key_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    request_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = _now()
    wipe_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("uq_idempotency_record_caller_key", "caller_id", "key_hash", unique=True),
    )


class AuditEvent(Base):
    """One event in Tailscale's configuration-audit shape, hash-chained; never updated."""

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_time", "event_time", "seq"),
        Index("ix_audit_event_user", "user_id", "event_time"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True, default=uuid.uuid4)
    event_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    event_group_id: Mapped[str] = mapped_column(String(64))
    origin: Mapped[str] = mapped_column(String(32))
    actor: Mapped[dict[str, Any]] = mapped_column(JSONB)
    target: Mapped[dict[str, Any]] = mapped_column(JSONB)
    action: Mapped[str] = mapped_column(String(32))
    event_name: Mapped[str] = mapped_column(String(64), index=True)
    old: Mapped[Any] = mapped_column(JSONB, nullable=True)
    new: Mapped[Any] = mapped_column(JSONB, nullable=True)
    action_details: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str] = mapped_column(Text, default="")
    user_id: Mapped[str | None] = mapped_column(String(128))
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditCheckpoint(Base):
    """Where pruning cut the chain: the last pruned event's hash keeps the rest verifiable."""

    __tablename__ = "audit_checkpoint"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    pruned_count: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = _now()


class AuditLink(Base):
    """Tailscale's own eventGroupID for an event of ours, found later through the observer.

    Kept apart from ``audit_event`` because that table is append-only.
    """

    __tablename__ = "audit_link"

    event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("audit_event.id", ondelete="CASCADE"), primary_key=True
    )
    upstream_event_group_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = _now()


class WebhookEndpoint(Base):
    """A URL an admin registered for events; its signing secret is sealed."""

    __tablename__ = "webhook_endpoint"

    id: Mapped[uuid.UUID] = _uuid_pk()
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(ARRAY(Text))
    status: Mapped[EndpointStatus] = mapped_column(_string_enum(EndpointStatus, 16))
    secret_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    # A delivery that fails for its whole retry window disables the endpoint only when
    # nothing else reached it meanwhile.
    last_delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()


class WebhookEvent(Base):
    """The outbox: one event, written in the transaction of the change it reports."""

    __tablename__ = "webhook_event"

    id: Mapped[uuid.UUID] = _uuid_pk()
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = _now()


class WebhookDelivery(Base):
    """One event to one endpoint: attempts, the next one, and the last answer."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        Index("ix_webhook_delivery_due", "status", "next_attempt_at"),
        Index("ix_webhook_delivery_endpoint_created", "endpoint_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_event.id", ondelete="CASCADE"), index=True
    )
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_endpoint.id", ondelete="CASCADE")
    )
    status: Mapped[DeliveryStatus] = mapped_column(_string_enum(DeliveryStatus, 16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Set by the first attempt (and cleared by a redeliver): past it, failures are final.
    retry_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(200))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()
