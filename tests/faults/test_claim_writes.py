"""security.md: a key is never handed out twice. The claim's two one-statement writes refuse a
request that is not, or no longer, theirs: nothing is written then."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.provisioning.status import RequestStatus
from service.provisioning.store import load_request
from service.provisioning.store.claims import claim_with_minted_key, mark_mint_started
from tests.helpers.fault_flows import ready_request_row

Sessions = async_sessionmaker[AsyncSession]
OWNER = "tsprov-test-owner"


async def ready_request(db: Sessions) -> uuid.UUID:
    return await ready_request_row(db, "claims")


async def mark(db: Sessions, request_id: uuid.UUID) -> datetime | None:
    async with db() as session, session.begin():
        marked = await mark_mint_started(session, request_id, OWNER)
    return marked[0].mint_started_at if marked is not None else None


async def hand_out(db: Sessions, request_id: uuid.UUID, started: datetime) -> bool:
    async with db() as session, session.begin():
        claimed = await claim_with_minted_key(session, request_id, started, "k-new", None)
    return claimed is not None


async def row(db: Sessions, request_id: uuid.UUID) -> tuple[str, datetime | None, str | None]:
    async with db() as session:
        request = await load_request(session, request_id)
        return request.status, request.mint_started_at, request.key_id


async def test_a_second_mint_is_not_started_while_one_is_in_flight(db: Sessions) -> None:
    request_id = await ready_request(db)
    started = await mark(db, request_id)
    assert started is not None
    assert await mark(db, request_id) is None
    assert await row(db, request_id) == (RequestStatus.READY, started, None)


async def test_the_outcome_of_a_mint_no_longer_in_flight_writes_nothing(db: Sessions) -> None:
    settled = await ready_request(db)
    started = await mark(db, settled)
    assert started is not None
    async with db() as session, session.begin():  # the reconciler settles it
        (await load_request(session, settled, lock=True)).mint_started_at = None
    assert not await hand_out(db, settled, started)
    assert await row(db, settled) == (RequestStatus.READY, None, None)
    retaken = await mark(db, settled)  # another claim's mint, started since
    assert retaken is not None
    assert not await hand_out(db, settled, started)
    assert await row(db, settled) == (RequestStatus.READY, retaken, None)
    assert await hand_out(db, settled, retaken)
    assert await row(db, settled) == (RequestStatus.CLAIMED, None, "k-new")


async def test_a_claimed_request_is_neither_marked_nor_handed_out_again(db: Sessions) -> None:
    request_id = await ready_request(db)
    started = await mark(db, request_id)
    assert started is not None
    assert await hand_out(db, request_id, started)
    assert await mark(db, request_id) is None
    assert not await hand_out(db, request_id, started)
    assert await row(db, request_id) == (RequestStatus.CLAIMED, None, "k-new")


async def test_a_request_cancelled_during_its_mint_is_not_handed_out(db: Sessions) -> None:
    request_id = await ready_request(db)
    started = await mark(db, request_id)
    assert started is not None
    async with db() as session, session.begin():  # cancelled while the mint is out
        (await load_request(session, request_id, lock=True)).status = RequestStatus.CANCELLED
    assert not await hand_out(db, request_id, started)
    assert await row(db, request_id) == (RequestStatus.CANCELLED, started, None)
