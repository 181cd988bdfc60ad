"""Request bodies of the API v2 routes the sandbox serves, validated as Tailscale documents."""

import re
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field, field_validator

MAX_KEY_EXPIRY_SECONDS = 90 * 24 * 3600
_DESCRIPTION = re.compile(r"^[A-Za-z0-9 -]*$")
_TAG = re.compile(r"^tag:[A-Za-z][A-Za-z0-9-]*$")
_APP_NAME = re.compile(r"^[A-Za-z0-9._-]{3,50}$")


class DeviceCreateCapabilities(BaseModel):
    """`capabilities.devices.create` of a key."""

    reusable: bool = False
    ephemeral: bool = False
    preauthorized: bool = False
    tags: list[str] = Field(default_factory=list)

    @field_validator("tags")
    @classmethod
    def _tags_well_formed(cls, tags: list[str]) -> list[str]:
        bad = [tag for tag in tags if not _TAG.match(tag)]
        if bad:
            raise ValueError(f"requested tags {bad} are invalid or not permitted")
        return tags


class DeviceCapabilities(BaseModel):
    """`capabilities.devices` of a key."""

    create: DeviceCreateCapabilities = Field(default_factory=DeviceCreateCapabilities)


class KeyCapabilities(BaseModel):
    """`capabilities` of a key."""

    devices: DeviceCapabilities = Field(default_factory=DeviceCapabilities)


class KeyCreateBody(BaseModel):
    """Body of `POST /tailnet/{t}/keys`."""

    keyType: Literal["auth"] = "auth"
    capabilities: KeyCapabilities
    expirySeconds: int = Field(default=0, ge=0, le=MAX_KEY_EXPIRY_SECONDS)
    description: str = Field(default="", max_length=50)

    @field_validator("description")
    @classmethod
    def _description_charset(cls, value: str) -> str:
        if not _DESCRIPTION.match(value):
            raise ValueError("description may hold only letters, digits, spaces and hyphens")
        return value


class OAuthAppBody(BaseModel):
    """Body of `POST` and `PUT` on `/tailnet/{t}/oauth-apps`; PUT replaces every field.

    Only the shape is checked here; `sandbox.oauth_apps.rules` checks what Tailscale refuses.
    """

    name: str
    description: str = Field(default="", max_length=300)
    redirectURIs: list[str] = Field(min_length=1)
    scopes: list[str] = Field(min_length=1)
    allowedNodeAttributes: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name_charset(cls, value: str) -> str:
        if not _APP_NAME.match(value):
            raise ValueError("name must be 3-50 characters of letters, digits, '.', '_', '-'")
        return value


class JoinBody(BaseModel):
    """Body of `POST /sandbox/join`: what `tailscale up --auth-key` sends."""

    authKey: str = Field(min_length=1)
    hostname: str = Field(min_length=1, max_length=255)
    os: str = Field(default="linux", min_length=1, max_length=32)


class DeviceAuthorizationBody(BaseModel):
    """Body of `POST /device/{id}/authorized`."""

    authorized: bool


class AttributeBody(BaseModel):
    """Body of `POST /device/{id}/attributes/{key}`."""

    value: str | int | float | bool
    expiry: AwareDatetime | None = None
    comment: str = Field(default="", max_length=200)
