"""Minting a key when Tailscale's answer never arrives (items 23 and 25).

security.md, fault case: a key mint times out after Tailscale made the key → the request
stays pending, the reconciler settles it; no duplicate key reaches a caller.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from service.jobs import run_job
from service.state import AppContext
from tests.faults.conftest import GrantFactory
from tests.helpers.fault_flows import (
    add_fault,
    age_mint,
    claim,
    logged,
    mint_started_at,
    ready_request,
    request_status,
)
from tests.helpers.steps import Sessions

DEADLINE_SECONDS = 1.0


async def minted(sandbox: httpx.AsyncClient, settle: int = 0) -> int:
    return len(await logged(sandbox, "keys", method="POST", settle=settle))


async def test_a_lost_mint_stays_pending_until_the_reconciler_settles_it(
    start_granted: GrantFactory,
    sandbox: httpx.AsyncClient,
    caller_key: str,
    db: Sessions,
    jobs_context: AppContext,
) -> None:
    service, user = await start_granted()
    request_id = await ready_request(service.api, caller_key, user)
    # Tailscale makes the key, then the connection drops before its answer is read.
    await add_fault(sandbox, route="keys", method="POST", lost_response=True, fail_times=1)

    lost = await claim(service.api, caller_key, request_id)

    assert lost.status_code == 503, lost.text
    assert lost.json()["code"] == "upstream_outcome_unknown"
    assert "auth_key" not in lost.json()
    assert await minted(sandbox, settle=1) == 1  # never resent
    assert await mint_started_at(db, request_id) is not None
    assert await request_status(service.api, caller_key, request_id) == "ready"

    # While pending, no claim may mint a second key.
    during = await claim(service.api, caller_key, request_id)
    assert during.status_code == 409, during.text
    assert during.json()["code"] == "already_claimed"
    # A fresh intent may still be in flight: the reconciler leaves it alone.
    await run_job(jobs_context, "settle_pending_mints")
    assert await mint_started_at(db, request_id) is not None
    assert await minted(sandbox) == 1

    await age_mint(db, request_id)
    assert await run_job(jobs_context, "settle_pending_mints") >= 1
    assert await mint_started_at(db, request_id) is None

    settled = await claim(service.api, caller_key, request_id)
    assert settled.status_code == 200, settled.text
    assert settled.json()["auth_key"].startswith("tskey-auth-")
    again = await claim(service.api, caller_key, request_id)
    assert again.status_code == 409
    assert again.json()["code"] == "already_claimed"
    assert await minted(sandbox) == 2
    assert await request_status(service.api, caller_key, request_id) == "claimed"


async def test_a_mint_slower_than_the_deadline_is_an_unknown_outcome_sent_once(
    start_granted: GrantFactory,
    sandbox: httpx.AsyncClient,
    caller_key: str,
    db: Sessions,
) -> None:
    service, user = await start_granted(upstream_deadline_seconds=DEADLINE_SECONDS)
    request_id = await ready_request(service.api, caller_key, user)
    held = DEADLINE_SECONDS + 0.5
    await add_fault(sandbox, route="keys", method="POST", latency_seconds=held, fail_times=1)

    started = time.monotonic()
    answer = await claim(service.api, caller_key, request_id)
    elapsed = time.monotonic() - started

    assert answer.status_code == 503, answer.text
    assert answer.json()["code"] == "upstream_outcome_unknown"
    assert DEADLINE_SECONDS - 0.1 < elapsed < DEADLINE_SECONDS + 1.0
    assert await mint_started_at(db, request_id) is not None
    # The held request completes at the sandbox (a key is made there); nothing followed it.
    await asyncio.sleep(held - elapsed + 0.2)
    assert await minted(sandbox, settle=1) == 1


async def test_a_5xx_on_a_mint_is_an_unknown_outcome_not_a_retry(
    start_granted: GrantFactory,
    sandbox: httpx.AsyncClient,
    caller_key: str,
    db: Sessions,
) -> None:
    service, user = await start_granted(upstream_max_attempts=5)
    request_id = await ready_request(service.api, caller_key, user)
    await add_fault(sandbox, route="keys", method="POST", status=502, fail_times=1)

    answer = await claim(service.api, caller_key, request_id)

    assert answer.status_code == 503, answer.text
    assert answer.json()["code"] == "upstream_outcome_unknown"
    assert await minted(sandbox, settle=1) == 1
    assert await mint_started_at(db, request_id) is not None


async def test_a_refused_mint_is_not_retried_and_frees_the_request(
    start_granted: GrantFactory,
    sandbox: httpx.AsyncClient,
    caller_key: str,
    db: Sessions,
) -> None:
    service, user = await start_granted(upstream_max_attempts=5)
    request_id = await ready_request(service.api, caller_key, user)
    await add_fault(sandbox, route="keys", method="POST", status=403, fail_times=1)

    answer = await claim(service.api, caller_key, request_id)

    assert answer.status_code == 502, answer.text
    assert answer.json()["code"] == "upstream_refused"
    assert await minted(sandbox, settle=1) == 1
    # A 4xx says nothing was made, so the request is claimable again at once.
    assert await mint_started_at(db, request_id) is None
    assert (await claim(service.api, caller_key, request_id)).status_code == 200
