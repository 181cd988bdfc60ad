"""Bodies of the user, grant and device endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from service.grants.status import GrantMode, GrantStatus
from service.web.fields import DisplayName, LoginName, StrictBody


class UserUpdate(StrictBody):
    tailscale_login: LoginName | None = None
    display_name: DisplayName | None = None


class GrantOut(BaseModel):
    id: uuid.UUID
    mode: GrantMode
    status: GrantStatus
    login_name: str | None
    scope: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None


class UserOut(BaseModel):
    user_id: str
    tailscale_login: str | None
    display_name: str | None
    created_at: datetime
    updated_at: datetime
    grants: list[GrantOut]


class DeviceOut(BaseModel):
    node_id: str
    name: str | None
    hostname: str | None
    user: str | None
    joined_at: datetime | None
    request_id: uuid.UUID
    live: dict[str, object] | None = Field(
        default=None, description="Tailscale's current Device object, when an observer is set."
    )


class DevicePage(BaseModel):
    items: list[DeviceOut]


class OffboardOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": "alice@example.com",
                    "grants_revoked": 1,
                    "requests_cancelled": 2,
                    "devices_deleted": ["nA1b2C3CNTRL"],
                    "devices_not_deleted": [],
                }
            ]
        }
    )

    user_id: str
    grants_revoked: int
    requests_cancelled: int
    devices_deleted: list[str]
    devices_not_deleted: list[str]
