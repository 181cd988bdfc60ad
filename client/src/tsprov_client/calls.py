"""Each caller-API operation as a ``Call``: what to send and how to read the answer.

The sync and async clients run the same calls, so the API is described once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from tsprov_client.models import Claim, Page, ProvisioningRequest, User
from tsprov_client.wire import json_object, new_idempotency_key

T = TypeVar("T")
# The server holds a long-poll for at most this long.
MAX_WAIT_SECONDS = 30
# A held answer may take this much longer than the wait itself to arrive.
LONG_POLL_MARGIN_SECONDS = 15.0


@dataclass(frozen=True)
class Call(Generic[T]):
    """One logical call; ``idempotency_key`` is fixed here, so every retry sends the same."""

    method: str
    path: str
    read: Callable[[httpx.Response], T]
    params: dict[str, str | int] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    idempotency_key: str | None = None
    read_timeout: float | None = None

    def headers(self) -> dict[str, str]:
        return {"Idempotency-Key": self.idempotency_key} if self.idempotency_key else {}


@dataclass(frozen=True)
class RequestOptions:
    """What a new provisioning request may carry besides its user.

    ``ephemeral``, ``preauthorized``, ``tags`` and ``key_expiry`` apply to keys minted from
    reusable grants only.
    """

    hostname: str | None = None
    description: str | None = None
    consent_ttl: timedelta | None = None
    return_to: str | None = None
    ephemeral: bool | None = None
    preauthorized: bool | None = None
    tags: Sequence[str] = ()
    key_expiry: timedelta | None = None

    def body(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "hostname": self.hostname,
            "description": self.description,
            "consent_ttl_seconds": _seconds(self.consent_ttl),
            "return_to": self.return_to,
            "ephemeral": self.ephemeral,
            "preauthorized": self.preauthorized,
            "tags": list(self.tags) or None,
            "expiry_seconds": _seconds(self.key_expiry),
        }
        return {name: value for name, value in values.items() if value is not None}


def _seconds(span: timedelta | None) -> int | None:
    return None if span is None else int(span.total_seconds())


def _segment(value: str) -> str:
    # Every character escaped: a "/" or ".." in an id must not reach another route.
    return quote(value, safe="")


def _request(response: httpx.Response) -> ProvisioningRequest:
    return ProvisioningRequest.from_json(json_object(response))


def _nothing(_response: httpx.Response) -> None:
    return None


def create_request(
    user_id: str, options: RequestOptions, idempotency_key: str | None
) -> Call[ProvisioningRequest]:
    return Call(
        "POST",
        f"/v1/users/{_segment(user_id)}/provisioning-requests",
        _request,
        body=options.body(),
        idempotency_key=idempotency_key or new_idempotency_key(),
    )


def get_request(request_id: str, wait_seconds: int = 0) -> Call[ProvisioningRequest]:
    if not 0 <= wait_seconds <= MAX_WAIT_SECONDS:
        raise ValueError(f"wait_seconds must be 0 to {MAX_WAIT_SECONDS}")
    return Call(
        "GET",
        f"/v1/provisioning-requests/{_segment(request_id)}",
        _request,
        params={"wait_seconds": wait_seconds} if wait_seconds else {},
        read_timeout=wait_seconds + LONG_POLL_MARGIN_SECONDS if wait_seconds else None,
    )


def list_requests(
    user_id: str, status: str | None, limit: int | None, cursor: str | None
) -> Call[Page[ProvisioningRequest]]:
    def read(response: httpx.Response) -> Page[ProvisioningRequest]:
        body = json_object(response)
        items = [ProvisioningRequest.from_json(item) for item in body.get("items") or []]
        next_cursor = body.get("next_cursor")
        return Page(items, str(next_cursor) if next_cursor else None)

    params = {"status": status, "limit": limit, "cursor": cursor}
    return Call(
        "GET",
        f"/v1/users/{_segment(user_id)}/provisioning-requests",
        read,
        params={name: value for name, value in params.items() if value is not None},
    )


def claim(request_id: str, idempotency_key: str | None) -> Call[Claim]:
    return Call(
        "POST",
        f"/v1/provisioning-requests/{_segment(request_id)}/claim",
        lambda response: Claim.from_json(json_object(response)),
        idempotency_key=idempotency_key or new_idempotency_key(),
    )


def cancel(request_id: str) -> Call[None]:
    return Call("DELETE", f"/v1/provisioning-requests/{_segment(request_id)}", _nothing)


def put_user(user_id: str, tailscale_login: str | None, display_name: str | None) -> Call[User]:
    body = {"tailscale_login": tailscale_login, "display_name": display_name}
    return Call(
        "PUT",
        f"/v1/users/{_segment(user_id)}",
        lambda response: User.from_json(json_object(response)),
        body={name: value for name, value in body.items() if value is not None},
    )


def get_user(user_id: str) -> Call[User]:
    return Call(
        "GET",
        f"/v1/users/{_segment(user_id)}",
        lambda response: User.from_json(json_object(response)),
    )
