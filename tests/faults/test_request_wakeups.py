"""security.md item 37: a request's long-polls are woken by the table's trigger, on commit.

A status change and the end of a key mint wake them; a mint's intent, or a change rolled
back, wakes nobody. Wake-ups arrive in commit order, so each "nobody" is shown by a later
change on another request arriving first.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.audit.events import WORKER
from service.models import ProvisioningRequest
from service.provisioning.notify import CHANNEL
from service.provisioning.status import RequestStatus
from service.provisioning.store import load_request
from service.provisioning.transitions import change_status
from tests.helpers.fault_flows import ready_request_row

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def wake_ups(faults_database_url: str) -> AsyncIterator[asyncio.Queue[str]]:
    """The request ids notified on CHANNEL, as a replica's listener hears them."""
    heard: asyncio.Queue[str] = asyncio.Queue()
    dsn = faults_database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    connection = await asyncpg.connect(dsn)

    def on_notify(_conn: Any, _pid: int, _channel: str, payload: object) -> None:
        heard.put_nowait(str(payload))

    await connection.add_listener(CHANNEL, on_notify)
    try:
        yield heard
    finally:
        await connection.close()


async def ready_request(db: Sessions) -> uuid.UUID:
    return await ready_request_row(db, "wake")


async def set_mint(db: Sessions, request_id: uuid.UUID, started: datetime | None) -> None:
    async with db() as session, session.begin():
        await session.execute(
            update(ProvisioningRequest)
            .where(ProvisioningRequest.id == request_id)
            .values(mint_started_at=started)
        )


async def cancel(db: Sessions, request_id: uuid.UUID, *, then_fail: bool = False) -> None:
    async with db() as session, session.begin():
        request = await load_request(session, request_id, lock=True)
        await change_status(
            session, request, RequestStatus.CANCELLED, actor=WORKER, origin="CONTROL"
        )
        if then_fail:
            raise RuntimeError("the transaction fails after the change")


async def next_wake_up(heard: asyncio.Queue[str]) -> uuid.UUID:
    return uuid.UUID(await asyncio.wait_for(heard.get(), timeout=10))


async def test_item_37_a_status_change_wakes_its_request_once_committed(
    db: Sessions, wake_ups: asyncio.Queue[str]
) -> None:
    rolled_back, cancelled = await ready_request(db), await ready_request(db)
    with pytest.raises(RuntimeError):
        await cancel(db, rolled_back, then_fail=True)
    await cancel(db, cancelled)
    assert await next_wake_up(wake_ups) == cancelled


async def test_item_37_the_end_of_a_mint_wakes_its_request_and_its_start_does_not(
    db: Sessions, wake_ups: asyncio.Queue[str]
) -> None:
    minting, other = await ready_request(db), await ready_request(db)
    await set_mint(db, minting, datetime.now(UTC))
    await cancel(db, other)
    assert await next_wake_up(wake_ups) == other
    await set_mint(db, minting, None)  # settled by the reconciler, or ended without a key
    assert await next_wake_up(wake_ups) == minting
