"""Bodies of the user, grant and device endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from service.grants.status import GrantMode, GrantStatus
from service.web.fields import DisplayName, LoginName, StrictBody


class UserUpdate(StrictBody):
    """What tsprov knows of a person; a field left out is left unchanged."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"tailscale_login": "alice@example.com", "display_name": "Alice"}]
        }
    )

    tailscale_login: LoginName | None = Field(
        default=None,
        description="The Tailscale login this person must approve as; a consent or a device "
        "under another login is refused (`identity_mismatch`).",
    )
    display_name: DisplayName | None = Field(default=None, description="A name for people.")


EXAMPLE_GRANT: dict[str, JsonValue] = {
    "id": "5e3b1f0a-9c2d-4b7e-8f6a-1d2c3b4a5e6f",
    "mode": "once",
    "status": "used",
    "login_name": "alice@example.com",
    "scope": "auth_keys",
    "created_at": "2026-11-28T20:16:02.000000Z",
    "expires_at": "2026-11-28T21:16:02.000000Z",
    "last_used_at": "2026-11-28T20:16:40.000000Z",
}


class GrantOut(BaseModel):
    """A consent's metadata; its tokens never leave tsprov."""

    id: uuid.UUID = Field(description="The grant's id.")
    mode: GrantMode = Field(description="`once`: one key; `reusable`: keys minted on demand.")
    status: GrantStatus = Field(description="Whether it can still give a key.")
    login_name: str | None = Field(description="The Tailscale login that approved.")
    scope: str = Field(description="The OAuth scope approved.")
    created_at: datetime = Field(description="When the user approved.")
    expires_at: datetime | None = Field(description="When its key or token expires.")
    last_used_at: datetime | None = Field(description="When it last gave a key.")


class UserOut(BaseModel):
    """A person, and the consents they gave."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": "alice@example.com",
                    "tailscale_login": "alice@example.com",
                    "display_name": "Alice",
                    "created_at": "2026-11-28T20:15:03.120455Z",
                    "updated_at": "2026-11-28T20:15:03.120455Z",
                    "grants": [EXAMPLE_GRANT],
                }
            ]
        }
    )

    user_id: str = Field(description="The id callers name the person by.")
    tailscale_login: str | None = Field(description="The login they must approve as.")
    display_name: str | None = Field(description="A name for people.")
    created_at: datetime = Field(description="When tsprov first heard of them.")
    updated_at: datetime = Field(description="When this record last changed.")
    grants: list[GrantOut] = Field(description="Their consents, newest first.")


EXAMPLE_DEVICE: dict[str, JsonValue] = {
    "node_id": "nA1b2C3CNTRL",
    "name": "devbox-42.example.ts.net",
    "hostname": "devbox-42",
    "user": "alice@example.com",
    "joined_at": "2026-11-28T20:17:11.000000Z",
    "request_id": "3c9a4b1e-8f2d-4e6a-b5c7-1d0e9f8a7b6c",
    "live": None,
}


class DeviceOut(BaseModel):
    """A device provisioned through tsprov."""

    node_id: str = Field(description="Tailscale's stable node id.")
    name: str | None = Field(description="The device's name in the tailnet.")
    hostname: str | None = Field(description="The hostname asked for.")
    user: str | None = Field(description="The Tailscale login that owns it.")
    joined_at: datetime | None = Field(description="When it joined.")
    request_id: uuid.UUID = Field(description="The provisioning request it came from.")
    live: dict[str, object] | None = Field(
        default=None, description="Tailscale's current Device object, when an observer is set."
    )


class DevicePage(BaseModel):
    """A user's provisioned devices."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [EXAMPLE_DEVICE]}]})

    items: list[DeviceOut] = Field(description="The devices provisioned for the user.")


class OffboardOut(BaseModel):
    """What offboarding did."""

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

    user_id: str = Field(description="The person offboarded.")
    grants_revoked: int = Field(description="Consents revoked; their tokens are wiped.")
    requests_cancelled: int = Field(description="Open requests cancelled.")
    devices_deleted: list[str] = Field(description="Node ids deleted at Tailscale.")
    devices_not_deleted: list[str] = Field(
        description="Node ids Tailscale did not delete (unreachable or refused); retry."
    )
