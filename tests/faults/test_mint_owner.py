"""A mint whose process died is settled at once, and the key it may have left is deleted.

A mint records its owner, the application_name of its process's listening connection; the
reconciler settles the mint as soon as Postgres shows no such connection, looks for the key
by its description at Tailscale, deletes it and audits what it found.
"""

from __future__ import annotations

import uuid

import asyncpg
import httpx
from sqlalchemy import text

from service.jobs import run_job
from service.provisioning.notify import PROCESS_NAME_PREFIX
from service.state import AppContext
from tests.faults.conftest import GrantFactory
from tests.helpers.fault_flows import (
    add_fault,
    claim,
    logged,
    mint_started_at,
    ready_request,
    set_switches,
)
from tests.helpers.steps import Sessions

KEY_OBSERVER_SCOPES = ["devices:core", "logs:configuration:read", "auth_keys"]


async def lost_mint(
    start_granted: GrantFactory, sandbox: httpx.AsyncClient, caller_key: str
) -> tuple[str, httpx.AsyncClient]:
    """A reusable grant's claim whose key Tailscale made but whose answer was lost."""
    service, user = await start_granted()
    request_id = await ready_request(service.api, caller_key, user)
    await add_fault(sandbox, route="keys", method="POST", lost_response=True, fail_times=1)
    lost = await claim(service.api, caller_key, request_id)
    assert lost.json()["code"] == "upstream_outcome_unknown", lost.text
    minted = await logged(sandbox, "keys", method="POST", settle=1)
    assert len(minted) == 1
    return request_id, service.api


async def set_owner(db: Sessions, request_id: str, owner: str) -> None:
    async with db() as session, session.begin():
        await session.execute(
            text("UPDATE provisioning_request SET mint_owner = :o WHERE id = :id"),
            {"o": owner, "id": uuid.UUID(request_id)},
        )


async def sweep_due_now(db: Sessions, request_id: str) -> None:
    async with db() as session, session.begin():
        await session.execute(
            text("UPDATE provisioning_request SET orphan_sweep_at = now() WHERE id = :id"),
            {"id": uuid.UUID(request_id)},
        )


async def sweep_pending(db: Sessions, request_id: str) -> bool:
    async with db() as session:
        due = await session.scalar(
            text("SELECT orphan_sweep_at FROM provisioning_request WHERE id = :id"),
            {"id": uuid.UUID(request_id)},
        )
    return due is not None


async def settled_details(db: Sessions, request_id: str) -> str:
    async with db() as session:
        details: str | None = await session.scalar(
            text(
                "SELECT action_details FROM audit_event WHERE target->>'id' = :id "
                "AND action_details LIKE '%mint with an unknown outcome%' ORDER BY seq DESC"
            ),
            {"id": request_id},
        )
    assert details is not None, "the settled mint was not audited"
    return details


async def test_a_dead_owners_mint_is_settled_at_once_and_its_key_deleted(
    start_granted: GrantFactory,
    sandbox: httpx.AsyncClient,
    caller_key: str,
    db: Sessions,
    jobs_context: AppContext,
) -> None:
    await set_switches(sandbox, observer_scopes=KEY_OBSERVER_SCOPES)
    request_id, api = await lost_mint(start_granted, sandbox, caller_key)
    await set_owner(db, request_id, f"{PROCESS_NAME_PREFIX}{uuid.uuid4().hex}")  # not connected

    assert await run_job(jobs_context, "settle_pending_mints") >= 1

    assert await mint_started_at(db, request_id) is None
    deleted = await logged(sandbox, "keys", method="DELETE", settle=1)
    assert len(deleted) == 1, "the key the dead mint left was not deleted at Tailscale"
    assert "was deleted" in await settled_details(db, request_id)

    # Claimed again; the last look, once due, leaves the key handed out alone.
    again = await claim(api, caller_key, request_id)
    assert again.status_code == 200, again.text
    await sweep_due_now(db, request_id)
    assert await run_job(jobs_context, "sweep_orphan_keys") >= 1
    assert await sweep_pending(db, request_id) is False
    assert len(await logged(sandbox, "keys", method="DELETE")) == 1


async def test_a_live_owners_mint_keeps_its_lease_until_the_owner_is_gone(
    start_granted: GrantFactory,
    sandbox: httpx.AsyncClient,
    caller_key: str,
    db: Sessions,
    jobs_context: AppContext,
    faults_database_url: str,
) -> None:
    request_id, _ = await lost_mint(start_granted, sandbox, caller_key)
    owner = f"{PROCESS_NAME_PREFIX}{uuid.uuid4().hex}"
    dsn = faults_database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    alive = await asyncpg.connect(dsn, server_settings={"application_name": owner})
    try:
        await set_owner(db, request_id, owner)
        await run_job(jobs_context, "settle_pending_mints")
        assert await mint_started_at(db, request_id) is not None  # alive and slow: left alone
    finally:
        await alive.close()

    assert await run_job(jobs_context, "settle_pending_mints") >= 1
    assert await mint_started_at(db, request_id) is None
    # The sandbox's observer may not list keys by default, nor may the grant's token.
    assert "could not look for its key" in await settled_details(db, request_id)
