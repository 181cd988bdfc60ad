"""The moves fault tests share: faults and switches, consent, claims, and what the rows hold."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import text

from service.provisioning.status import RequestStatus
from service.provisioning.store.creation import insert_request, new_request
from tests.conftest import bearer
from tests.helpers.browser import Browser
from tests.helpers.stack import TEST_CREDENTIALS
from tests.helpers.steps import Sessions, create_request, fetch_request, new_user

APP_PATH = f"/api/v2/tailnet/-/oauth-apps/{TEST_CREDENTIALS.app_id}"
REUSABLE_SCOPE = "auth_keys:create"


async def add_fault(sandbox: httpx.AsyncClient, **rule: Any) -> None:
    answer = await sandbox.post("/sandbox/faults", json=rule)
    assert answer.status_code == 201, answer.text


async def set_switches(sandbox: httpx.AsyncClient, **switches: Any) -> None:
    answer = await sandbox.patch("/sandbox/switches", json=switches)
    assert answer.status_code == 200, answer.text


async def logged(
    sandbox: httpx.AsyncClient,
    route: str,
    *,
    method: str | None = None,
    grant_type: str | None = None,
    settle: int = 0,
) -> list[dict[str, Any]]:
    """The sandbox's log for a route, oldest first; waits up to 2 s for ``settle`` entries.

    The sandbox logs a request when it has answered it, which can trail the client's view.
    """
    params = {"route": route, **({"grant_type": grant_type} if grant_type else {})}
    entries: list[dict[str, Any]] = []
    for _ in range(40):
        answer = await sandbox.get("/sandbox/requests", params=params)
        entries = [e for e in answer.json()["requests"] if method in (None, e["method"])]
        if len(entries) >= settle:
            return entries
        await asyncio.sleep(0.05)
    return entries


def gaps(entries: list[dict[str, Any]]) -> list[float]:
    """Seconds between consecutive logged requests."""
    times = [datetime.fromisoformat(entry["time"]) for entry in entries]
    return [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(times)]


async def consented_user(
    sandbox: httpx.AsyncClient, api: httpx.AsyncClient, browser: Browser, key: str
) -> str:
    """A new user holding a reusable grant (the service must ask for the reusable scope)."""
    await set_switches(sandbox, grant_mode="reusable")
    user = new_user()
    request = await create_request(api, key, user)
    callback = await browser.consent(request["consent_url"], login="alice@example.com")
    assert callback.status_code == 303, callback.text
    return user


async def ready_request(api: httpx.AsyncClient, key: str, user: str) -> str:
    """A request that is ready at once, as the user holds a live reusable grant."""
    request = await create_request(api, key, user)
    assert request["status"] == "ready", request
    return str(request["id"])


async def claim(
    api: httpx.AsyncClient, key: str, request_id: str, idempotency_key: str | None = None
) -> httpx.Response:
    headers = bearer(key)
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    return await api.post(f"/v1/provisioning-requests/{request_id}/claim", headers=headers)


async def request_status(api: httpx.AsyncClient, key: str, request_id: str) -> str:
    return str((await fetch_request(api, key, request_id))["status"])


async def grant_rows(db: Sessions, user: str) -> list[dict[str, Any]]:
    async with db() as session:
        rows = await session.execute(
            text(
                "SELECT id, status, token_ciphertext, refresh_ciphertext, token_expires_at "
                "FROM consent_grant WHERE user_id = :user ORDER BY created_at"
            ),
            {"user": user},
        )
        return [dict(row._mapping) for row in rows]


async def mint_started_at(db: Sessions, request_id: str) -> datetime | None:
    async with db() as session:
        started: datetime | None = await session.scalar(
            text("SELECT mint_started_at FROM provisioning_request WHERE id = :id"),
            {"id": uuid.UUID(request_id)},
        )
        return started


async def age_mint(db: Sessions, request_id: str) -> None:
    """Pretend the mint started long enough ago for the reconciler to consider it dead."""
    async with db() as session, session.begin():
        await session.execute(
            text(
                "UPDATE provisioning_request "
                "SET mint_started_at = mint_started_at - interval '3 minutes' WHERE id = :id"
            ),
            {"id": uuid.UUID(request_id)},
        )


async def mint_intent_committed(db: Sessions, request_id: str) -> None:
    """Wait (up to 2 s) until a claim has committed its intent to mint: it is in flight."""
    for _ in range(100):
        if await mint_started_at(db, request_id) is not None:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("no claim started minting")


async def grant_row_is_unlocked(db: Sessions, grant_id: uuid.UUID) -> bool:
    """True when nobody holds the grant's row lock (the refresh lock)."""
    async with db() as session, session.begin():
        try:
            await session.execute(
                text("SELECT id FROM consent_grant WHERE id = :id FOR UPDATE NOWAIT"),
                {"id": grant_id},
            )
        except Exception as exc:  # asyncpg's LockNotAvailableError, wrapped by SQLAlchemy
            if "could not obtain lock" in str(exc):
                return False
            raise
    return True


async def ready_request_row(db: Sessions, label: str) -> uuid.UUID:
    """A ready request written straight to its table, for tests of the table's own writes."""
    async with db() as session, session.begin():
        request = new_request(
            user_id=f"{label}-{uuid.uuid4().hex[:8]}",
            status=RequestStatus.READY,
            created_by="test",
            tags=[],
        )
        await insert_request(session, request)
    return request.id
