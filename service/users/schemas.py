"""Bodies of the user, grant and device endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from service.grants.status import GrantMode, GrantStatus
from service.web.fields import DisplayName, LoginName, StrictBody


class UserUpdate(StrictBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"tailscale_login": "alice@example.com", "display_name": "Alice Liddell"}]
        }
    )

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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": "alice@example.com",
                    "tailscale_login": "alice@example.com",
                    "display_name": "Alice Liddell",
                    "created_at": "2026-11-28T20:10:00.000000Z",
                    "updated_at": "2026-11-28T20:10:00.000000Z",
                    "grants": [
                        {
                            "id": "0b5e2f1c-7a3d-4c8e-9f10-2d3c4b5a6e7f",
                            "mode": "once",
                            "status": "used",
                            "login_name": "alice@example.com",
                            "scope": "auth_keys:create:once",
                            "created_at": "2026-11-28T20:15:03.120455Z",
                            "expires_at": "2026-11-28T21:15:03.120455Z",
                            "last_used_at": "2026-11-28T20:16:40.000000Z",
                        }
                    ],
                }
            ]
        }
    )

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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "node_id": "nA1b2C3CNTRL",
                            "name": "devbox-42.tail1234.ts.net",
                            "hostname": "devbox-42",
                            "user": "alice@example.com",
                            "joined_at": "2026-11-28T20:18:12.000000Z",
                            "request_id": "3c9a4b1e-8f2d-4e6a-b5c7-1d0e9f8a7b6c",
                            "live": None,
                        }
                    ]
                }
            ]
        }
    )

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
