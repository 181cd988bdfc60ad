"""Webhook event types, and the statuses of endpoints and deliveries."""

from __future__ import annotations

from enum import StrEnum


class WebhookEventType(StrEnum):
    REQUEST_READY = "provisioning_request.ready"
    REQUEST_CLAIMED = "provisioning_request.claimed"
    REQUEST_JOINED = "provisioning_request.joined"
    REQUEST_FAILED = "provisioning_request.failed"
    REQUEST_EXPIRED = "provisioning_request.expired"
    REQUEST_CANCELLED = "provisioning_request.cancelled"
    GRANT_REVOKED = "grant.revoked"
    GRANT_NEEDS_CONSENT = "grant.needs_consent"


class EndpointStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"  # failed for a whole retry window; nothing more is sent


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # due now or at next_attempt_at
    DELIVERED = "delivered"  # a 2xx answer
    FAILED = "failed"  # its retry window passed without a 2xx
