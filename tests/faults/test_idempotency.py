"""`Idempotency-Key` on create and claim, with Tailscale's mint counted at the sandbox (item 27).

Same key and body → the first answer replayed, upstream called once; a different body →
422; while the first is in flight → 409; keys are per caller and expire after 24 h.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text

from service.jobs import run_job
from service.state import AppContext
from tests.conftest import bearer
from tests.faults.conftest import GrantFactory, ServiceFactory
from tests.helpers.browser import Browser
from tests.helpers.fault_flows import (
    add_fault,
    claim,
    consented_user,
    logged,
    mint_intent_committed,
    ready_request,
)
from tests.helpers.steps import Sessions, new_user


async def create(
    api: httpx.AsyncClient, key: str, user: str, idempotency_key: str, **body: Any
) -> httpx.Response:
    return await api.post(
        f"/v1/users/{user}/provisioning-requests",
        headers={**bearer(key), "Idempotency-Key": idempotency_key},
        json=body,
    )


# A record's expiry, and the end of a claim answer's replay window, moved into the past.
AGE = {
    "expires_at": text(
        "UPDATE idempotency_record SET expires_at = now() - interval '1 second' "
        "WHERE key_hash = :hash"
    ),
    "wipe_at": text(
        "UPDATE idempotency_record SET wipe_at = now() - interval '1 second' WHERE key_hash = :hash"
    ),
}


async def age_record(db: Sessions, idempotency_key: str, column: str) -> None:
    """Move a record's ``expires_at`` or ``wipe_at`` into the past."""
    async with db() as session, session.begin():
        await session.execute(
            AGE[column], {"hash": hashlib.sha256(idempotency_key.encode()).digest()}
        )


async def record_times(db: Sessions, idempotency_key: str) -> dict[str, Any]:
    async with db() as session:
        row = await session.execute(
            text(
                "SELECT created_at, expires_at, wipe_at, response_ciphertext "
                "FROM idempotency_record WHERE key_hash = :hash"
            ),
            {"hash": hashlib.sha256(idempotency_key.encode()).digest()},
        )
        return dict(row.one()._mapping)


async def test_a_replayed_claim_answers_the_same_key_and_mints_once(
    start_granted: GrantFactory,
    sandbox: httpx.AsyncClient,
    caller_key: str,
) -> None:
    service, user = await start_granted()
    request_id = await ready_request(service.api, caller_key, user)

    first = await claim(service.api, caller_key, request_id, "claim-once")
    again = await claim(service.api, caller_key, request_id, "claim-once")

    assert first.status_code == again.status_code == 200, again.text
    assert again.json() == first.json()
    assert again.headers["cache-control"] == "no-store"
    assert len(await logged(sandbox, "keys", method="POST", settle=1)) == 1
    without_key = await claim(service.api, caller_key, request_id)
    assert without_key.json()["code"] == "already_claimed"


async def test_a_replayed_create_answers_the_same_request(
    start_service: ServiceFactory, caller_key: str
) -> None:
    service = await start_service()
    user = new_user()
    first = await create(service.api, caller_key, user, "create-once", hostname="box1")
    again = await create(service.api, caller_key, user, "create-once", hostname="box1")
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]


async def test_the_same_key_with_a_different_body_is_refused(
    start_granted: GrantFactory,
    sandbox: httpx.AsyncClient,
    caller_key: str,
) -> None:
    service, user = await start_granted()
    assert (await create(service.api, caller_key, user, "k-body", hostname="a")).status_code == 201

    other_body = await create(service.api, caller_key, user, "k-body", hostname="b")
    assert other_body.status_code == 422
    assert other_body.json()["code"] == "idempotency_conflict"
    # A claim is a different request too, even with no body.
    request_id = await ready_request(service.api, caller_key, user)
    other_route = await claim(service.api, caller_key, request_id, "k-body")
    assert other_route.status_code == 422
    assert other_route.json()["code"] == "idempotency_conflict"
    assert await logged(sandbox, "keys", method="POST") == []


async def test_the_same_key_while_the_first_is_in_flight_is_refused(
    start_granted: GrantFactory,
    sandbox: httpx.AsyncClient,
    caller_key: str,
    db: Sessions,
) -> None:
    service, user = await start_granted()
    request_id = await ready_request(service.api, caller_key, user)
    await add_fault(sandbox, route="keys", method="POST", latency_seconds=0.6, fail_times=1)
    first = asyncio.create_task(claim(service.api, caller_key, request_id, "k-twin"))
    await mint_intent_committed(db, request_id)

    twin = await claim(service.api, caller_key, request_id, "k-twin")

    assert twin.status_code == 409
    assert twin.json()["code"] == "idempotency_in_flight"
    assert "Idempotency-Key" in twin.json()["detail"]  # refused by the key, not the claim
    answer = await first
    assert answer.status_code == 200, answer.text
    replay = await claim(service.api, caller_key, request_id, "k-twin")
    assert replay.json() == answer.json()
    assert len(await logged(sandbox, "keys", method="POST", settle=1)) == 1


async def test_keys_are_scoped_per_caller(
    start_service: ServiceFactory,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    make_key: Callable[[], Awaitable[str]],
) -> None:
    service = await start_service(reusable=True)
    alpha, beta = await make_key(), await make_key()
    user = await consented_user(sandbox, service.api, browser, alpha)

    mine = await create(service.api, alpha, user, "shared-key", hostname="x")
    theirs = await create(service.api, beta, user, "shared-key", hostname="x")
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    # Another caller's key never replays this caller's auth key.
    request_id = mine.json()["id"]
    assert (await claim(service.api, alpha, request_id, "claim-key")).status_code == 200
    stolen = await claim(service.api, beta, request_id, "claim-key")
    assert stolen.status_code == 409
    assert stolen.json()["code"] == "already_claimed"


async def test_keys_expire_after_24_hours_through_the_background_purge(
    start_service: ServiceFactory, caller_key: str, db: Sessions, jobs_context: AppContext
) -> None:
    service = await start_service()
    user = new_user()
    first = await create(service.api, caller_key, user, "k-day", hostname="d")
    record = await record_times(db, "k-day")
    assert abs(record["expires_at"] - record["created_at"] - timedelta(hours=24)) < timedelta(
        seconds=5
    )

    await age_record(db, "k-day", "expires_at")
    assert await run_job(jobs_context, "purge_spent_records") >= 1

    later = await create(service.api, caller_key, user, "k-day", hostname="d")
    assert later.status_code == 201
    assert later.json()["id"] != first.json()["id"]


async def test_a_claim_answer_is_replayable_for_five_minutes_then_wiped(
    start_granted: GrantFactory,
    caller_key: str,
    db: Sessions,
    jobs_context: AppContext,
) -> None:
    service, user = await start_granted()
    request_id = await ready_request(service.api, caller_key, user)
    assert (await claim(service.api, caller_key, request_id, "k-window")).status_code == 200
    record = await record_times(db, "k-window")
    assert record["wipe_at"] - datetime.now(UTC) < timedelta(minutes=5)
    assert record["wipe_at"] - datetime.now(UTC) > timedelta(minutes=4)

    await age_record(db, "k-window", "wipe_at")
    assert await run_job(jobs_context, "purge_spent_records") >= 1

    assert (await record_times(db, "k-window"))["response_ciphertext"] is None
    after = await claim(service.api, caller_key, request_id, "k-window")
    assert after.status_code == 409
    assert after.json()["code"] == "already_claimed"
