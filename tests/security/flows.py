"""Small steps the security tests share: ask for a device, read the sandbox's token log."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from tests.conftest import bearer


def new_user() -> str:
    return f"sec-{uuid.uuid4().hex[:12]}"


async def ask(api: httpx.AsyncClient, key: str, user: str, **body: object) -> dict[str, Any]:
    """Create a provisioning request and return it; it must be accepted."""
    response = await api.post(
        f"/v1/users/{user}/provisioning-requests", headers=bearer(key), json=body
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def fetch(api: httpx.AsyncClient, key: str, request_id: str) -> dict[str, Any]:
    response = await api.get(f"/v1/provisioning-requests/{request_id}", headers=bearer(key))
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def code_exchanges(sandbox: httpx.AsyncClient) -> list[dict[str, Any]]:
    """Every authorization-code redemption the sandbox's token endpoint has seen."""
    log = await sandbox.get("/sandbox/requests", params={"grant_type": "authorization_code"})
    requests: list[dict[str, Any]] = log.json()["requests"]
    return requests


async def upstream_calls(sandbox: httpx.AsyncClient) -> list[dict[str, Any]]:
    """Every Tailscale-facing request the sandbox has seen since its last reset."""
    requests: list[dict[str, Any]] = (await sandbox.get("/sandbox/requests")).json()["requests"]
    return requests


def with_query(url: str, **changes: str) -> str:
    """``url`` with some query parameters replaced or added, the others kept in order."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))
