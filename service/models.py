"""Tables. Secrets live only in ``*_ciphertext`` columns sealed by the key ring."""

from __future__ import annotations

import uuid
from datetime import datetime
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
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from service.columns import TransactionId, now_column, string_enum, uuid_pk
from service.db import Base
from service.grants.status import GrantMode, GrantStatus
from service.provisioning.status import RequestStatus


class Caller(Base):
    """An internal service with an API key; only the key's hash is kept."""

    __tablename__ = "caller"

    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str] = mapped_column(String(64), unique=True)
    key_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text))
    user_patterns: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    created_at: Mapped[datetime] = now_column()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class UserAccount(Base):
    """A person callers name by ``user_id``."""

    __tablename__ = "user_account"
    # /me finds the users who expect a login.
    __table_args__ = (Index("ix_user_account_login", text("lower(tailscale_login)")),)

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[str] = mapped_column(String(128), unique=True)
    tailscale_login: Mapped[str | None] = mapped_column(String(320))
    display_name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = now_column()
    updated_at: Mapped[datetime] = now_column()


class ConsentGrant(Base):
    """What one consent yields: a one-time key, or access and refresh tokens."""

    __tablename__ = "consent_grant"
    __table_args__ = (
        Index("ix_consent_grant_user_status", "user_id", "status"),
        # /me finds the grants a login gave, whoever they were for.
        Index("ix_consent_grant_login", text("lower(login_name)")),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[str] = mapped_column(String(128))
    mode: Mapped[GrantMode] = mapped_column(string_enum(GrantMode, 16))
    status: Mapped[GrantStatus] = mapped_column(string_enum(GrantStatus, 16))
    login_name: Mapped[str | None] = mapped_column(String(320))
    scope: Mapped[str] = mapped_column(String(200))
    token_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    refresh_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    token_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When an identity source confirmed ``login_name`` as the user's; later claims skip the
    # check. Null: not (yet) confirmed.
    identity_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = now_column()
    updated_at: Mapped[datetime] = now_column()


class ProvisioningRequest(Base):
    """A caller's ask for one device for one user, and its state machine."""

    __tablename__ = "provisioning_request"
    __table_args__ = (
        Index("ix_provisioning_request_user_created", "user_id", "created_at", "id"),
        # The console's lists, newest first (migration 0011).
        Index("ix_provisioning_request_created", "created_at", "id"),
        Index("ix_provisioning_request_status_created", "status", "created_at", "id"),
        Index("ix_provisioning_request_caller_created", "created_by", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[RequestStatus] = mapped_column(string_enum(RequestStatus, 24))
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
    # The application_name of the minting process's listening connection (see notify.py).
    mint_owner: Mapped[str | None] = mapped_column(String(64))
    # A settled mint's last look at Tailscale for the key it may have left (orphans.py).
    orphan_sweep_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    device_node_id: Mapped[str | None] = mapped_column(String(64))
    device_name: Mapped[str | None] = mapped_column(String(255))
    device_user: Mapped[str | None] = mapped_column(String(320))
    device_joined_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Tailscale's "authorized" as last seen; False while the device waits for approval.
    device_authorized: Mapped[bool | None] = mapped_column(Boolean)
    # The custom posture attribute tsprov set on the device to name this request.
    device_attribute: Mapped[str | None] = mapped_column(String(128))
    # When tsprov finished its calls on the joined device (approval, attribute).
    device_followed_up_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failure_reason: Mapped[str | None] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = now_column()
    updated_at: Mapped[datetime] = now_column()


class ConsentFlow(Base):
    """One visit to a consent link: hashed state and browser binding, sealed PKCE verifier."""

    __tablename__ = "consent_flow"

    id: Mapped[uuid.UUID] = uuid_pk()
    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("provisioning_request.id", ondelete="CASCADE"), index=True
    )
    state_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    browser_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    verifier_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = now_column()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    consumed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class IdempotencyRecord(Base):
    """A caller's Idempotency-Key and the answer it earned, sealed (a claim holds a key)."""

    __tablename__ = "idempotency_record"

    id: Mapped[uuid.UUID] = uuid_pk()
    caller_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("caller.id", ondelete="CASCADE"))
    key_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    request_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = now_column()
    wipe_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("uq_idempotency_record_caller_key", "caller_id", "key_hash", unique=True),
    )


class AuditEvent(Base):
    """One event in Tailscale's configuration-audit shape; never updated.

    Writers insert it with no lock. ``seq`` and ``xid`` (the writing transaction) come from
    the database and the service's role may not set them; the sealer links the event into
    the hash chain later, in ``audit_seal``.
    """

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_time", "event_time", "seq"),
        Index("ix_audit_event_user", "user_id", "event_time"),
        Index("ix_audit_event_xid", "xid", "seq"),
        # When each caller last acted, for the console (migration 0011).
        Index("ix_audit_event_actor", text("(actor ->> 'id')"), "event_time"),
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
    xid: Mapped[int] = mapped_column(TransactionId, server_default=func.pg_current_xact_id())
    # Correlation with the logs, outside the hashed content (migration 2026-12-05).
    request_id: Mapped[str | None] = mapped_column(String(128), index=True)


class AuditSeal(Base):
    """An event's place in the hash chain, written once by the sealer; never updated.

    ``canonical`` is the RFC 8785 JSON of the event's content as sealed, and ``hash`` is
    SHA-256 over ``prev_hash`` and it; verify checks the event's columns still say the same.
    """

    __tablename__ = "audit_seal"

    position: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    event_seq: Mapped[int] = mapped_column(
        ForeignKey("audit_event.seq", ondelete="CASCADE"), unique=True
    )
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    canonical: Mapped[bytes] = mapped_column(LargeBinary)
    sealed_at: Mapped[datetime] = now_column()


class AuditSignedCheckpoint(Base):
    """The chain head after a sealing round, signed with the audit signing key (Ed25519).

    ``position`` is the head's place in the chain, which is also how many events were sealed
    since the chain began; published as ``count``.
    """

    __tablename__ = "audit_signed_checkpoint"

    position: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    event_seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    signed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    key_id: Mapped[str] = mapped_column(String(32))
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))


class AuditCheckpoint(Base):
    """Where pruning cut the chain: the last pruned event's hash keeps the rest verifiable."""

    __tablename__ = "audit_checkpoint"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    # Where the chain resumes: the pruned event's place and writing transaction.
    last_position: Mapped[int] = mapped_column(BigInteger)
    last_xid: Mapped[int] = mapped_column(TransactionId)
    last_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    pruned_count: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = now_column()


class AuditLink(Base):
    """Tailscale's own eventGroupID for an event of ours, found later through the observer.

    Kept apart from ``audit_event`` because that table is append-only.
    """

    __tablename__ = "audit_link"

    event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("audit_event.id", ondelete="CASCADE"), primary_key=True
    )
    upstream_event_group_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = now_column()


class BackgroundRun(Base):
    """When each background job last ran, on any replica: what ``tsprov status`` reports."""

    __tablename__ = "background_run"

    job: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_run_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    rows_changed: Mapped[int] = mapped_column(Integer)


# The webhook tables live beside their domain; importing them here registers them with the
# rest, so that every table is known wherever service.models is imported.
from service.webhooks.models import WebhookDelivery as WebhookDelivery  # noqa: E402
from service.webhooks.models import WebhookEndpoint as WebhookEndpoint  # noqa: E402
from service.webhooks.models import WebhookEvent as WebhookEvent  # noqa: E402
