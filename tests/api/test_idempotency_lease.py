"""An Idempotency-Key reservation left by a process that died is not stuck for 24 hours."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.callers.idempotency import (
    RECORD_LIFETIME,
    Answer,
    fingerprint,
    run_idempotent,
)
from service.crypto.keyring import KeyRing
from service.models import Caller, IdempotencyRecord
from service.provisioning.schemas import ProvisioningRequestCreate
from service.state import AppContext
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
                    "create:alice",
                    ProvisioningRequestCreate.model_validate(BODY).model_dump(mode="json"),
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
    context: AppContext,
) -> None:
    caller = await make_caller("provision", name="heir")
    await reserve(
        sessions, "heir", "orphan", context.settings.operation_lease + timedelta(seconds=1)
    )
    answer = await create(client, caller, "orphan")
    assert answer.status_code == 201, answer.text
    replay = await create(client, caller, "orphan")
    assert replay.json()["id"] == answer.json()["id"]


async def test_a_call_that_lost_its_lease_does_not_answer_for_the_key(
    context: AppContext,
    key_ring: KeyRing,
    make_caller: CallerFactory,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A slow first call whose row a retry took over stores nothing, and deletes nothing."""
    await make_caller("provision", name="slowpoke")
    async with sessions() as session:
        caller_id = await session.scalar(select(Caller.id).where(Caller.name == "slowpoke"))
    assert caller_id is not None
    request_hash = fingerprint("op", None)

    async def slow_then_taken_over() -> Answer:
        # Meanwhile a retry takes the row over: its lease (created_at) moves on.
        async with sessions() as session, session.begin():
            await session.execute(
                update(IdempotencyRecord).values(created_at=datetime.now(UTC) + timedelta(1))
            )
        return Answer(200, {"who": "first"})

    first = await run_idempotent(
        context, key_ring, caller_id, "k", lambda: request_hash, slow_then_taken_over
    )
    assert first.body == {"who": "first"}
    async with sessions() as session:
        record = await session.scalar(select(IdempotencyRecord))
    assert record is not None
    assert record.response_status is None  # the first call did not answer for the retry
