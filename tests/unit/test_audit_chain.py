"""The hash chain: verify passes on an honest log and names the first event tampered with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Row, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.audit import chain as audit_chain
from service.audit.chain import verify_audit_chain, verify_chain
from service.audit.events import (
    CONTENT_COLUMNS,
    GENESIS_HASH,
    WORKER,
    Target,
    chain_hash,
    content_of,
    record_event,
)
from service.audit.retention import PruneRefused, prune_audit
from service.models import AuditCheckpoint, AuditEvent
from tests.unit.audit_support import append_at

NOW = datetime(2026, 6, 1, tzinfo=UTC)


async def chain_of(session: AsyncSession, count: int, *, start: datetime = NOW) -> list[AuditEvent]:
    return [
        await append_at(session, start + timedelta(minutes=index), user_id=f"u{index}")
        for index in range(count)
    ]


async def test_honest_log_verifies(session: AsyncSession) -> None:
    events = await chain_of(session, 7)
    await record_event(
        session, origin="CONTROL", actor=WORKER, target=Target("g", "u", "GRANT"), action="EXPIRED"
    )
    report = await verify_chain(session, batch_size=3)
    assert (report.ok, report.checked, report.first_bad_event, report.reason) == (
        True, 8, None, None,
    )  # fmt: skip
    assert events[0].prev_hash == GENESIS_HASH


async def test_empty_log_verifies(sessions: async_sessionmaker[AsyncSession]) -> None:
    report = await verify_audit_chain(sessions)
    assert report.ok
    assert report.checked == 0


async def test_edited_row_is_named(session: AsyncSession) -> None:
    events = await chain_of(session, 6)
    await session.execute(
        text("UPDATE audit_event SET new = '\"joined\"'::jsonb WHERE id = :id"),
        {"id": events[3].id},
    )
    report = await verify_chain(session, batch_size=4)
    assert not report.ok
    assert report.first_bad_event == str(events[3].id)
    assert report.reason is not None
    assert report.reason.startswith("edited")
    assert report.checked == 3


async def test_edited_time_is_named(session: AsyncSession) -> None:
    events = await chain_of(session, 3)
    await session.execute(
        text("UPDATE audit_event SET event_time = event_time - interval '1 day' WHERE id = :id"),
        {"id": events[1].id},
    )
    report = await verify_chain(session)
    assert report.first_bad_event == str(events[1].id)


async def test_deleted_row_names_the_event_after_the_gap(session: AsyncSession) -> None:
    events = await chain_of(session, 6)
    await session.execute(text("DELETE FROM audit_event WHERE id = :id"), {"id": events[2].id})
    report = await verify_chain(session, batch_size=2)
    assert not report.ok
    assert report.first_bad_event == str(events[3].id)
    assert report.reason is not None
    assert report.reason.startswith("the event before it was removed")


async def test_deleted_first_row_is_caught(session: AsyncSession) -> None:
    events = await chain_of(session, 3)
    await session.execute(text("DELETE FROM audit_event WHERE id = :id"), {"id": events[0].id})
    report = await verify_chain(session)
    assert report.first_bad_event == str(events[1].id)


async def test_reordered_rows_are_named(session: AsyncSession) -> None:
    events = await chain_of(session, 6)
    first, second = events[2], events[3]
    # Swap their places in the chain order, keeping every byte of their content.
    for old_seq, new_seq in ((first.seq, -1), (second.seq, first.seq), (-1, second.seq)):
        await session.execute(
            text("UPDATE audit_event SET seq = :new WHERE seq = :old"),
            {"old": old_seq, "new": new_seq},
        )
    report = await verify_chain(session)
    assert not report.ok
    assert report.first_bad_event == str(second.id)
    assert report.reason is not None
    assert report.reason.startswith("reordered")


async def test_inserted_row_is_named(session: AsyncSession) -> None:
    events = await chain_of(session, 4)
    # A forged event, properly hashed onto events[1], slipped in just after it.
    forged = await append_at(session, NOW, user_id="mallory")
    await session.execute(
        text("UPDATE audit_event SET seq = seq + 100 WHERE seq > :s AND id <> :f"),
        {"s": events[1].seq, "f": forged.id},
    )
    await session.execute(
        text("UPDATE audit_event SET seq = :s, prev_hash = :p WHERE id = :f"),
        {"s": events[1].seq + 1, "p": events[1].hash, "f": forged.id},
    )
    await session.execute(
        text("UPDATE audit_event SET hash = :h WHERE id = :f"),
        {"h": await _rehash(session, forged.id), "f": forged.id},
    )
    report = await verify_chain(session)
    assert report.first_bad_event == str(forged.id)
    assert report.reason is not None
    assert report.reason.startswith("inserted")


async def _rehash(session: AsyncSession, event_id: object) -> bytes:
    session.expunge_all()
    event = await session.scalar(select(AuditEvent).where(AuditEvent.id == event_id))
    assert event is not None
    return chain_hash(event.prev_hash, content_of(_columns(event)))


def _columns(event: AuditEvent) -> dict[str, object]:
    return {name: getattr(event, name) for name in CONTENT_COLUMNS}


async def test_prune_keeps_the_chain_verifiable(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        old = await chain_of(session, 25, start=NOW - timedelta(days=100))
        kept = await chain_of(session, 5, start=NOW - timedelta(days=10))
    report = await prune_audit(sessions, 90, now=NOW, batch_size=10)
    assert (report.pruned, report.checkpoints, report.last_seq) == (25, 3, old[-1].seq)
    async with sessions() as session:
        remaining = list(await session.scalars(select(AuditEvent.id).order_by(AuditEvent.seq)))
        checkpoint = await session.scalar(
            select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1)
        )
    assert remaining == [event.id for event in kept]
    assert checkpoint is not None
    assert (checkpoint.last_seq, checkpoint.last_hash) == (old[-1].seq, old[-1].hash)
    assert checkpoint.pruned_count == 25
    assert (await verify_audit_chain(sessions)).ok
    async with sessions() as session, session.begin():
        await record_event(
            session,
            origin="CONTROL",
            actor=WORKER,
            target=Target("g", "u", "GRANT"),
            action="EXPIRED",
        )
    verified = await verify_audit_chain(sessions)
    assert (verified.ok, verified.checked) == (True, 6)


async def test_prune_everything_then_append(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        await chain_of(session, 3, start=NOW - timedelta(days=200))
    assert (await prune_audit(sessions, 90, now=NOW)).pruned == 3
    async with sessions() as session, session.begin():
        event = await record_event(
            session,
            origin="CONTROL",
            actor=WORKER,
            target=Target("g", "u", "GRANT"),
            action="EXPIRED",
        )
    assert event.prev_hash != GENESIS_HASH
    assert (await verify_audit_chain(sessions)).ok


async def test_deleting_after_a_checkpoint_is_caught(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        await chain_of(session, 3, start=NOW - timedelta(days=200))
        kept = await chain_of(session, 3, start=NOW)
    await prune_audit(sessions, 90, now=NOW)
    async with sessions() as session, session.begin():
        await session.execute(text("DELETE FROM audit_event WHERE id = :id"), {"id": kept[0].id})
    report = await verify_audit_chain(sessions)
    assert report.first_bad_event == str(kept[1].id)


async def test_prune_during_verify_is_not_a_break(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with sessions() as session, session.begin():
        await chain_of(session, 6, start=NOW - timedelta(days=200))
        await chain_of(session, 2, start=NOW)
    real_batch = audit_chain._batch
    calls = 0

    async def batch_then_prune(session: AsyncSession, after: int, size: int) -> list[Row[Any]]:
        nonlocal calls
        calls += 1
        if calls == 2:  # another process prunes while the walk is under way
            await prune_audit(sessions, 90, now=NOW, verify_first=False)
        return await real_batch(session, after, size)

    monkeypatch.setattr(audit_chain, "_batch", batch_then_prune)
    report = await verify_chain(sessions, batch_size=2)
    assert report.ok, report


async def test_prune_refuses_to_vouch_for_a_broken_chain(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        events = await chain_of(session, 4, start=NOW - timedelta(days=200))
        await session.execute(text("DELETE FROM audit_event WHERE id = :id"), {"id": events[1].id})
    with pytest.raises(PruneRefused, match="broken"):
        await prune_audit(sessions, 90, now=NOW)
    async with sessions() as session:
        assert await session.scalar(select(AuditCheckpoint.id).limit(1)) is None
