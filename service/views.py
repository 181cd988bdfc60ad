"""Shaping stored rows into the caller API's response bodies."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime

from service.crypto import KeyRing
from service.errors import ValidationFailed
from service.models import ConsentGrant, ProvisioningRequest
from service.provisioning import consent_url
from service.schemas import DeviceSummary, GrantSummary, ProvisioningRequestOut
from service.settings import Settings


def request_out(
    settings: Settings, key_ring: KeyRing, request: ProvisioningRequest, grant: ConsentGrant | None
) -> ProvisioningRequestOut:
    device = None
    if request.device_node_id:
        device = DeviceSummary(
            node_id=request.device_node_id,
            name=request.device_name,
            user=request.device_user,
            joined_at=request.device_joined_at,
        )
    return ProvisioningRequestOut(
        id=request.id,
        user_id=request.user_id,
        status=request.status,
        hostname=request.hostname,
        description=request.description,
        consent_url=consent_url(settings, key_ring, request),
        consent_expires_at=request.consent_expires_at,
        key_expires_at=request.key_expires_at,
        grant=GrantSummary(mode=grant.mode, login_name=grant.login_name) if grant else None,
        device=device,
        created_by=request.created_by,
        created_at=request.created_at,
        updated_at=request.updated_at,
    )


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, row_id = raw.partition("|")
        return datetime.fromisoformat(stamp), uuid.UUID(row_id)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValidationFailed("The cursor is not valid.") from exc
