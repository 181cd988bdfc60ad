"""What happens to a claim whose request changes while its key is being minted."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from service.callers.store import create_caller
from tests.conftest import bearer
from tests.faults.conftest import GrantFactory
from tests.helpers.fault_flows import (
    add_fault,
    claim,
    logged,
    mint_intent_committed,
    ready_request,
    request_status,
    set_switches,
)
from tests.helpers.steps import Sessions, expire_access_tokens


async def admin_key(db: Sessions) -> str:
    async with db() as session, session.begin():
        _, key = await create_caller(session, f"admin-{uuid.uuid4().hex[:8]}", ["admin"], [])
    return key


async def test_a_request_cancelled_during_its_mint_never_hands_out_the_key(
    start_granted: GrantFactory,
    sandbox: httpx.AsyncClient,
    caller_key: str,
    db: Sessions,
) -> None:
    await set_switches(sandbox, observer_scopes=["devices:core", "auth_keys"])
    service, user = await start_granted()
    request_id = await ready_request(service.api, caller_key, user)
    await add_fault(sandbox, route="keys", method="POST", latency_seconds=0.8, fail_times=1)
    claiming = asyncio.create_task(claim(service.api, caller_key, request_id))
    await mint_intent_committed(db, request_id)
    cancelled = await service.api.delete(
        f"/v1/provisioning-requests/{request_id}", headers=bearer(caller_key)
    )
    assert cancelled.status_code == 204
    answer = await claiming
    assert answer.status_code == 409, answer.text
    assert answer.json()["request_status"] == "cancelled"
    assert "tskey" not in answer.text
    assert await request_status(service.api, caller_key, request_id) == "cancelled"
    # The key Tailscale made reached nobody: it is deleted there, not left live.
    assert len(await logged(sandbox, "keys", method="DELETE", settle=1)) == 1


async def test_offboarding_during_a_mint_wins_over_the_claim(
    start_granted: GrantFactory,
    sandbox: httpx.AsyncClient,
    caller_key: str,
    db: Sessions,
) -> None:
    service, user = await start_granted()
    request_id = await ready_request(service.api, caller_key, user)
    await add_fault(sandbox, route="keys", method="POST", latency_seconds=0.8, fail_times=1)
    claiming = asyncio.create_task(claim(service.api, caller_key, request_id))
    await mint_intent_committed(db, request_id)
    offboarded = await service.api.delete(
        f"/v1/users/{user}/grants", headers=bearer(await admin_key(db))
    )
    assert offboarded.status_code == 200
    answer = await claiming
    assert answer.status_code == 409
    assert "tskey" not in answer.text


async def test_concurrent_offboarding_and_claims_neither_deadlock_nor_hang(
    start_granted: GrantFactory,
    caller_key: str,
    db: Sessions,
) -> None:
    service, user = await start_granted()
    requests = [await ready_request(service.api, caller_key, user) for _ in range(8)]
    admin = await admin_key(db)
    claims = [claim(service.api, caller_key, request_id) for request_id in requests]
    offboard = service.api.delete(f"/v1/users/{user}/grants", headers=bearer(admin))
    answers = await asyncio.wait_for(asyncio.gather(offboard, *claims), timeout=20)
    assert answers[0].status_code == 200, answers[0].text
    assert {answer.status_code for answer in answers[1:]} <= {200, 409}


async def test_a_slow_refresh_queues_callers_without_draining_the_pool(
    start_granted: GrantFactory,
    sandbox: httpx.AsyncClient,
    caller_key: str,
    db: Sessions,
) -> None:
    service, user = await start_granted(db_pool_size=4, db_pool_timeout_seconds=1)
    requests = [await ready_request(service.api, caller_key, user) for _ in range(30)]
    await expire_access_tokens(db, user)
    # The refresh takes longer than a pool wait may: queued callers must not hold connections.
    await add_fault(sandbox, route="token", grant_type="refresh_token", latency_seconds=1.5)
    answers = await asyncio.gather(*(claim(service.api, caller_key, r) for r in requests))
    assert [answer.status_code for answer in answers] == [200] * 30
