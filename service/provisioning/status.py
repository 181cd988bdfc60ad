"""A provisioning request's statuses, and the moves between them."""

from __future__ import annotations

from enum import StrEnum


class RequestStatus(StrEnum):
    AWAITING_CONSENT = "awaiting_consent"
    READY = "ready"
    CLAIMED = "claimed"
    JOINED = "joined"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    FAILED = "failed"


# Still waiting for a consent or a claim: what offboarding cancels and expiry ends.
OPEN_STATUSES = frozenset({RequestStatus.AWAITING_CONSENT, RequestStatus.READY})
# Its key went out: a second claim is "already claimed", not "not ready".
HANDED_OUT_STATUSES = frozenset({RequestStatus.CLAIMED, RequestStatus.JOINED})
# Nothing moves a request on from these: a long-poll on one answers at once.
FINAL_STATUSES = frozenset(
    {RequestStatus.JOINED, RequestStatus.EXPIRED, RequestStatus.CANCELLED, RequestStatus.FAILED}
)
