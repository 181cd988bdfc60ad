"""Steps several suites take: a fresh user, a request created, read or claimed and joined
through tsprov's API and the sandbox, a grant made due for a refresh in the database."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import bearer

Sessions = async_sessionmaker[AsyncSession]


def new_user() -> str:
    """A user id no other test uses, so tests share a database without seeing each other."""
    return f"user-{uuid.uuid4().hex[:12]}"


async def create_request(
    api: httpx.AsyncClient, key: str, user: str, **body: Any
) -> dict[str, Any]:
    """Create a provisioning request for ``user``; it must be accepted."""
    answer = await api.post(
        f"/v1/users/{user}/provisioning-requests", headers=bearer(key), json=body
    )
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


async def fetch_request(api: httpx.AsyncClient, key: str, request_id: str) -> dict[str, Any]:
    """Read a provisioning request; it must exist."""
    answer = await api.get(f"/v1/provisioning-requests/{request_id}", headers=bearer(key))
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def claim_and_join(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, key: str, request_id: str, hostname: str
) -> dict[str, Any]:
    """Claim a ready request's key and join with it as `tailscale up` would; the device."""
    claim = await api.post(f"/v1/provisioning-requests/{request_id}/claim", headers=bearer(key))
    assert claim.status_code == 200, claim.text
    join = {"authKey": claim.json()["auth_key"], "hostname": hostname, "os": "linux"}
    joined = await sandbox.post("/sandbox/join", json=join)
    assert joined.status_code == 200, joined.text
    device: dict[str, Any] = joined.json()
    return device


async def expire_access_tokens(db: Sessions, user: str) -> None:
    """Make the user's access tokens due for a refresh."""
    async with db() as session, session.begin():
        await session.execute(
            text(
                "UPDATE consent_grant SET token_expires_at = now() - interval '1 minute' "
                "WHERE user_id = :user"
            ),
            {"user": user},
        )
