"""Events committed out of seq order: the sealer skips none and seals them in commit order.

Real transactions on their own connections, committed for real, in a database of this
module's own (the rolled-back test transaction could not show what other transactions do).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as create_engine

from service.audit.chain import verify_chain
from service.audit.events import WORKER, Target, record_event
from service.audit.sealer import seal_audit_events
from service.audit.store import RecordedEvent
from service.models import AuditSeal
from service.ops.devdb import ensure_database, with_database
from service.ops.migrate import upgrade_head
from tests.helpers.stack import scoped_database_name


@pytest.fixture(scope="module")
def sealing_database(postgres_server: str) -> str:
    url = with_database(postgres_server, scoped_database_name("tsprov_sealing"))
    asyncio.run(ensure_database(url, recreate=True))
    upgrade_head(url)
    return url.replace("postgresql://", "postgresql+asyncpg://", 1)


@pytest.fixture
async def committed(sealing_database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(sealing_database)
    yield engine
    async with engine.begin() as connection:
        await connection.execute(text("TRUNCATE audit_event CASCADE"))
    await engine.dispose()


async def _record(session: AsyncSession, name: str) -> RecordedEvent:
    target = Target(id=name, name=name, type="GRANT")
    return await record_event(session, origin="CONTROL", actor=WORKER, target=target, action="X")


async def _seal(sessions: async_sessionmaker[AsyncSession]) -> list[int]:
    """One sealing round in its own transaction, as the job runs it; the seqs it sealed."""
    async with sessions() as session, session.begin():
        before = await session.scalar(select(func.max(AuditSeal.position)))
        await seal_audit_events(session, None)
        sealed = await session.scalars(
            select(AuditSeal.event_seq)
            .where(AuditSeal.position > (before or 0))
            .order_by(AuditSeal.position)
        )
        return list(sealed)


async def test_a_late_commit_with_a_lower_seq_is_sealed_after_not_skipped(
    committed: AsyncEngine,
) -> None:
    sessions = async_sessionmaker(committed, expire_on_commit=False)
    async with sessions() as first, sessions() as second:
        await first.begin()
        await first.execute(text("SELECT pg_current_xact_id()"))  # its business write
        await second.begin()
        low = await _record(second, "second-low-seq")  # takes the lower seq
        high = await _record(first, "first-high-seq")
        assert low.seq < high.seq
        await first.commit()
        # The first transaction began writing before the second and has committed, so its
        # event is final: sealed now, although an event with a lower seq is still open.
        assert await _seal(sessions) == [high.seq]
        await second.commit()
    assert await _seal(sessions) == [low.seq]
    report = await verify_chain(sessions)
    assert (report.ok, report.checked, report.pending) == (True, 2, 0)


async def test_an_open_transaction_holds_back_only_what_comes_after_it(
    committed: AsyncEngine,
) -> None:
    sessions = async_sessionmaker(committed, expire_on_commit=False)
    async with sessions() as slow, sessions() as quick:
        await slow.begin()
        held = await _record(slow, "slow")
        async with quick.begin():
            later = await _record(quick, "quick")
        # Committed, but written after a transaction that may still add an event before it.
        assert await _seal(sessions) == []
        report = await verify_chain(sessions)
        assert (report.ok, report.checked, report.pending) == (True, 0, 1)
        await slow.commit()
    assert await _seal(sessions) == [held.seq, later.seq]
    report = await verify_chain(sessions)
    assert (report.ok, report.checked, report.pending) == (True, 2, 0)


async def test_a_rolled_back_event_leaves_no_hole(committed: AsyncEngine) -> None:
    sessions = async_sessionmaker(committed, expire_on_commit=False)
    async with sessions() as session, session.begin():
        kept = await _record(session, "kept")
    async with sessions() as session:
        await session.begin()
        await _record(session, "rolled-back")
        await session.rollback()
    async with sessions() as session, session.begin():
        after = await _record(session, "after")
    assert await _seal(sessions) == [kept.seq, after.seq]
    assert (await verify_chain(sessions)).ok
