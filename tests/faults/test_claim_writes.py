"""security.md: a key is never handed out twice. The claim's two one-statement writes refuse a
request that is not, or no longer, theirs: nothing is written then, nor audited."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.audit.events import WORKER, Event, Target, record_events
from service.models import AuditEvent
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
    """The hand-out with its two audit events, as a claim sends it; whether it was written.

    Either the row and both events are written, or none of them."""
    async with db() as session, session.begin():
        request = await load_request(session, request_id)
        claim = claim_with_minted_key(request, started, "k-new", None)
        events = [hand_out_event(request_id, "key"), hand_out_event(request_id, "status")]
        before = await events_about(session, request_id)
        recorded = await record_events(session, *events, along=claim.along)
        written = await events_about(session, request_id) - before
    assert written == len(recorded)
    assert len(recorded) in (0, 2)
    if recorded:
        assert claim.request.status == RequestStatus.CLAIMED
        assert (claim.request.key_id, claim.request.mint_started_at) == ("k-new", None)
    return bool(recorded)


def hand_out_event(request_id: uuid.UUID, what: str) -> Event:
    target = Target(id=str(request_id), name=what, type="PROVISIONING_REQUEST")
    return Event(origin="test", actor=WORKER, target=target, action="UPDATE")


async def events_about(session: AsyncSession, request_id: uuid.UUID) -> int:
    count = select(func.count()).where(AuditEvent.target["id"].astext == str(request_id))
    return (await session.scalar(count)) or 0


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
