"""A grant's modes and statuses."""

from __future__ import annotations

from enum import StrEnum


class GrantMode(StrEnum):
    ONCE = "once"  # one consent, one one-time auth key
    REUSABLE = "reusable"  # access and refresh tokens that mint a key per claim


class GrantStatus(StrEnum):
    ACTIVE = "active"
    USED = "used"
    EXPIRED = "expired"
    REVOKED = "revoked"
    NEEDS_CONSENT = "needs_consent"
