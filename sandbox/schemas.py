"""Request bodies of the API v2 routes the sandbox serves, validated as Tailscale documents."""

import ipaddress
import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator

MAX_KEY_EXPIRY_SECONDS = 90 * 24 * 3600
APP_SCOPES = frozenset({"auth_keys:create", "auth_keys:create:once"})
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
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


def check_redirect_uri(uri: str) -> str:
    """Refuse what Tailscale refuses: non-https (loopback aside), raw IPs, fragments."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    if not host or parts.fragment:
        raise ValueError(f"invalid redirect URI {uri!r}")
    if host in LOOPBACK_HOSTS:
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"invalid redirect URI {uri!r}: http or https only")
        return uri
    if parts.scheme != "https":
        raise ValueError(f"invalid redirect URI {uri!r}: https required")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return uri
    raise ValueError(f"invalid redirect URI {uri!r}: IP address hosts are not allowed")


class OAuthAppBody(BaseModel):
    """Body of `POST` and `PUT` on `/tailnet/{t}/oauth-apps`; PUT replaces every field."""

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

    @field_validator("redirectURIs")
    @classmethod
    def _redirect_uris(cls, values: list[str]) -> list[str]:
        return [check_redirect_uri(uri) for uri in values]

    @field_validator("scopes")
    @classmethod
    def _scopes_known(cls, values: list[str]) -> list[str]:
        if not set(values) <= APP_SCOPES:
            raise ValueError("invalid scopes")
        return values

    @field_validator("allowedNodeAttributes")
    @classmethod
    def _custom_attributes(cls, values: list[str]) -> list[str]:
        if any(not value.startswith("custom:") for value in values):
            raise ValueError("allowedNodeAttributes must each start with 'custom:'")
        return values


class JoinBody(BaseModel):
    """Body of `POST /sandbox/join`: what `tailscale up --auth-key` sends."""

    authKey: str = Field(min_length=1)
    hostname: str = Field(min_length=1, max_length=255)
    os: str = Field(default="linux", min_length=1, max_length=32)
