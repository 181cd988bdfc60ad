"""An Idempotency-Key reservation left by a process that died is not stuck for 24 hours."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.idempotency import IN_FLIGHT_LEASE, RECORD_LIFETIME, fingerprint
from service.models import Caller, IdempotencyRecord
from service.schemas import ProvisioningRequestCreate
from tests.conftest import CallerFactory, bearer

BODY = {"hostname": "leased"}


async def reserve(
    sessions: async_sessionmaker[AsyncSession], caller_name: str, key: str, age: timedelta
) -> None:
    """A reservation as run_idempotent writes it, never answered, made ``age`` ago."""
    async with sessions() as session, session.begin():
        caller_id = await session.scalar(select(Caller.id).where(Caller.name == caller_name))
        assert caller_id is not None
        made = datetime.now(UTC) - age
        session.add(
            IdempotencyRecord(
                id=uuid.uuid4(),
                caller_id=caller_id,
                key_hash=hashlib.sha256(key.encode()).digest(),
                request_hash=fingerprint(
                    "create:alice", ProvisioningRequestCreate(**BODY).model_dump(mode="json")
                ),
                created_at=made,
                expires_at=made + RECORD_LIFETIME,
            )
        )


async def create(client: httpx.AsyncClient, caller: str, key: str) -> httpx.Response:
    return await client.post(
        "/v1/users/alice/provisioning-requests",
        headers={**bearer(caller), "Idempotency-Key": key},
        json=BODY,
    )


async def test_a_reservation_still_within_its_lease_is_in_flight(
    client: httpx.AsyncClient,
    make_caller: CallerFactory,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    caller = await make_caller("provision", name="lessee")
    await reserve(sessions, "lessee", "fresh", timedelta(seconds=5))
    answer = await create(client, caller, "fresh")
    assert answer.status_code == 409
    assert answer.json()["code"] == "idempotency_in_flight"


async def test_a_reservation_past_its_lease_is_taken_over(
    client: httpx.AsyncClient,
    make_caller: CallerFactory,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    caller = await make_caller("provision", name="heir")
    await reserve(sessions, "heir", "orphan", IN_FLIGHT_LEASE + timedelta(seconds=1))
    answer = await create(client, caller, "orphan")
    assert answer.status_code == 201, answer.text
    replay = await create(client, caller, "orphan")
    assert replay.json()["id"] == answer.json()["id"]
