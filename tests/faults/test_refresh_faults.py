"""Refreshing a reusable grant while the token endpoint or Postgres fails (items 24 and 26).

security.md, fault cases: a connection reset after the refresh request was sent → at most
one controlled retry, on invalid_grant needs_consent, the lock released; Postgres stopped in
the middle of a refresh → rollback, the old grant intact.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import httpx
import pytest
from sqlalchemy import text

from tests.faults.conftest import GrantFactory, Service
from tests.helpers.browser import Browser
from tests.helpers.fault_flows import (
    add_fault,
    claim,
    grant_row_is_unlocked,
    grant_rows,
    logged,
    mint_started_at,
    ready_request,
    request_status,
    set_switches,
)
from tests.helpers.steps import Sessions, expire_access_tokens

REFRESH = "refresh_token"


class Due(NamedTuple):
    """A reusable-scope service; a user whose grant needs a refresh; a ready request; the
    grant's row as it stood before anything was tried."""

    service: Service
    user: str
    request_id: str
    grant: dict[str, Any]


DueFactory = Callable[..., Awaitable[Due]]


@pytest.fixture
def start_due(start_granted: GrantFactory, caller_key: str, db: Sessions) -> DueFactory:
    """``service, user, request_id, grant = await start_due(**overrides)``."""

    async def start(**overrides: Any) -> Due:
        service, user = await start_granted(**overrides)
        request_id = await ready_request(service.api, caller_key, user)
        await expire_access_tokens(db, user)
        [grant] = await grant_rows(db, user)
        return Due(service, user, request_id, grant)

    return start


async def test_a_lost_refresh_answer_is_resent_once_and_a_spent_token_asks_for_consent(
    start_due: DueFactory,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    caller_key: str,
    db: Sessions,
) -> None:
    service, user, request_id, grant = await start_due()
    # Tailscale rotates the token, then the connection drops before tsprov reads the answer.
    await add_fault(sandbox, route="token", grant_type=REFRESH, lost_response=True, fail_times=1)

    answer = await claim(service.api, caller_key, request_id)

    assert answer.status_code == 409, answer.text
    assert answer.json()["code"] == "consent_required"
    refreshes = await logged(sandbox, "token", grant_type=REFRESH, settle=2)
    assert [(entry["lost"], entry["status"]) for entry in refreshes] == [(True, None), (False, 400)]
    [after] = await grant_rows(db, user)
    assert after["status"] == "needs_consent"
    assert after["refresh_ciphertext"] is None
    assert await grant_row_is_unlocked(db, grant["id"])
    assert await request_status(service.api, caller_key, request_id) == "awaiting_consent"
    # The lock and the request are free: consenting again makes the request claimable.
    again = await browser.consent(answer.json()["consent_url"], login="alice@example.com")
    assert again.status_code == 303, again.text
    assert (await claim(service.api, caller_key, request_id)).status_code == 200


async def test_a_lost_refresh_answer_is_resent_once_and_succeeds_without_rotation(
    start_due: DueFactory,
    sandbox: httpx.AsyncClient,
    caller_key: str,
) -> None:
    service, _, request_id, _ = await start_due()
    await set_switches(sandbox, rotate_refresh_tokens=False)
    await add_fault(sandbox, route="token", grant_type=REFRESH, lost_response=True, fail_times=1)

    answer = await claim(service.api, caller_key, request_id)

    assert answer.status_code == 200, answer.text
    refreshes = await logged(sandbox, "token", grant_type=REFRESH, settle=2)
    assert [(entry["lost"], entry["status"]) for entry in refreshes] == [(True, None), (False, 200)]


async def test_a_refresh_whose_answers_keep_getting_lost_is_sent_twice_then_given_up(
    start_due: DueFactory,
    sandbox: httpx.AsyncClient,
    caller_key: str,
    db: Sessions,
) -> None:
    service, user, request_id, grant = await start_due(upstream_max_attempts=5)
    await set_switches(sandbox, rotate_refresh_tokens=False)
    await add_fault(sandbox, route="token", grant_type=REFRESH, lost_response=True)

    answer = await claim(service.api, caller_key, request_id)

    assert answer.status_code == 503, answer.text
    assert answer.json()["code"] == "upstream_unavailable"
    # Attempts were left (five), but a refresh is resent only once after it may have arrived.
    assert len(await logged(sandbox, "token", grant_type=REFRESH, settle=2)) == 2
    [after] = await grant_rows(db, user)
    assert after == grant
    assert await grant_row_is_unlocked(db, grant["id"])
    assert await mint_started_at(db, request_id) is None
    await sandbox.delete("/sandbox/faults")
    assert (await claim(service.api, caller_key, request_id)).status_code == 200


async def test_a_refresh_answer_without_a_refresh_token_keeps_the_old_one(
    start_due: DueFactory,
    sandbox: httpx.AsyncClient,
    caller_key: str,
    db: Sessions,
) -> None:
    service, user, request_id, grant = await start_due()
    await set_switches(sandbox, rotate_refresh_tokens=False)

    assert (await claim(service.api, caller_key, request_id)).status_code == 200

    [refreshed] = await grant_rows(db, user)
    assert refreshed["refresh_ciphertext"] == grant["refresh_ciphertext"]
    assert refreshed["token_ciphertext"] != grant["token_ciphertext"]
    assert refreshed["token_expires_at"] > grant["token_expires_at"]
    # The kept refresh token is the one the next refresh presents, and it still works.
    await expire_access_tokens(db, user)
    second = await ready_request(service.api, caller_key, user)
    assert (await claim(service.api, caller_key, second)).status_code == 200
    refreshes = await logged(sandbox, "token", grant_type=REFRESH, settle=2)
    assert [entry["status"] for entry in refreshes] == [200, 200]


async def test_a_500_on_refresh_is_retried_at_most_once(
    start_due: DueFactory,
    sandbox: httpx.AsyncClient,
    caller_key: str,
) -> None:
    service, _, request_id, _ = await start_due(upstream_max_attempts=5)
    await add_fault(sandbox, route="token", grant_type=REFRESH, status=500)

    answer = await claim(service.api, caller_key, request_id)

    assert answer.status_code == 503, answer.text
    refreshes = await logged(sandbox, "token", grant_type=REFRESH, settle=2)
    assert [entry["status"] for entry in refreshes] == [500, 500]


async def service_backend_holding_the_grant_lock(db: Sessions) -> int:
    """The pid of the service's connection that holds a grant's row lock mid-refresh."""
    query = text(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = 'tsprov' AND state = 'idle in transaction' "
        "AND query ILIKE '%FROM consent_grant%FOR UPDATE%'"
    )
    for _ in range(100):
        async with db() as session:
            pids: list[int] = list(await session.scalars(query))
        if len(pids) == 1:
            return pids[0]
        await asyncio.sleep(0.02)
    raise AssertionError(f"no single backend holds the refresh lock: {pids}")


async def test_postgres_lost_mid_refresh_rolls_back_and_keeps_the_old_grant(
    start_due: DueFactory,
    sandbox: httpx.AsyncClient,
    caller_key: str,
    db: Sessions,
) -> None:
    service, user, request_id, grant = await start_due()
    await set_switches(sandbox, rotate_refresh_tokens=False)
    # Hold the refresh upstream while its transaction (and row lock) is open, then kill the
    # connection under it: what a Postgres restart does to an open transaction.
    await add_fault(sandbox, route="token", grant_type=REFRESH, latency_seconds=1, fail_times=1)
    claiming = asyncio.create_task(claim(service.api, caller_key, request_id))
    pid = await service_backend_holding_the_grant_lock(db)
    async with db() as session:
        assert await session.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

    answer = await claiming

    assert answer.status_code == 503, answer.text
    assert answer.json()["code"] == "database_unavailable"
    assert answer.headers["retry-after"] == "1"
    [after] = await grant_rows(db, user)
    assert after == grant
    assert await grant_row_is_unlocked(db, grant["id"])
    assert await mint_started_at(db, request_id) is None
    assert await request_status(service.api, caller_key, request_id) == "ready"
    # The grant kept is a working one: the next claim refreshes with it and succeeds.
    assert (await claim(service.api, caller_key, request_id)).status_code == 200
