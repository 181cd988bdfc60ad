"""The hash chain: verify passes on an honest log and names the first event tampered with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from asyncpg import Record
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.audit import store
from service.audit.chain import verify_audit_chain, verify_chain
from service.audit.events import (
    GENESIS_HASH,
    WORKER,
    Target,
    canonical_content,
    chain_hash,
    record_event,
)
from service.audit.retention import PruneRefused, prune_audit
from service.audit.store import RecordedEvent
from service.models import AuditCheckpoint, AuditEvent, AuditSeal
from tests.unit.audit_support import append_at, seal_now

NOW = datetime(2026, 6, 1, tzinfo=UTC)


async def chain_of(session: AsyncSession, count: int, *, start: datetime = NOW) -> list[AuditEvent]:
    return [
        await append_at(session, start + timedelta(minutes=index), user_id=f"u{index}")
        for index in range(count)
    ]


async def sealed_chain_of(session: AsyncSession, count: int) -> list[AuditEvent]:
    events = await chain_of(session, count)
    assert (await seal_now(session)).sealed == count
    return events


async def _seal_of(session: AsyncSession, event: AuditEvent | RecordedEvent) -> AuditSeal:
    seal = await session.scalar(select(AuditSeal).where(AuditSeal.event_seq == event.seq))
    assert seal is not None
    return seal


async def test_honest_log_verifies(session: AsyncSession) -> None:
    events = await chain_of(session, 7)
    await record_event(
        session, origin="CONTROL", actor=WORKER, target=Target("g", "u", "GRANT"), action="EXPIRED"
    )
    pending = await verify_chain(session, batch_size=3)
    assert (pending.ok, pending.checked, pending.pending) == (True, 0, 8)
    await seal_now(session)
    report = await verify_chain(session, batch_size=3)
    assert (report.ok, report.checked, report.first_bad_event, report.reason) == (
        True, 8, None, None,
    )  # fmt: skip
    assert report.pending == 0
    assert (await _seal_of(session, events[0])).prev_hash == GENESIS_HASH


async def test_empty_log_verifies(sessions: async_sessionmaker[AsyncSession]) -> None:
    report = await verify_audit_chain(sessions)
    assert report.ok
    assert report.checked == 0


async def test_edited_row_is_named(session: AsyncSession) -> None:
    events = await sealed_chain_of(session, 6)
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


async def test_content_rfc8785_writes_its_own_way_is_compared_by_value(
    session: AsyncSession,
) -> None:
    # RFC 8785 sorts "\ue000" after "\U0001f600" (UTF-16 order), unlike a rendering sorted by
    # code point: the byte comparison misses, and the value comparison decides.
    odd = {"\ue000": 1, "\U0001f600": 2, "half": 0.5}
    events = await chain_of(session, 3)
    events.append(await append_at(session, NOW + timedelta(hours=1), new=odd))
    await seal_now(session)
    assert (await verify_chain(session, batch_size=2)).ok
    await session.execute(
        text("UPDATE audit_event SET new = jsonb_set(new, '{half}', '0.25') WHERE id = :id"),
        {"id": events[3].id},
    )
    report = await verify_chain(session, batch_size=2)
    assert (report.ok, report.first_bad_event) == (False, str(events[3].id))
    assert report.reason is not None
    assert report.reason.startswith("edited")


async def test_edited_time_is_named(session: AsyncSession) -> None:
    events = await sealed_chain_of(session, 3)
    await session.execute(
        text("UPDATE audit_event SET event_time = event_time - interval '1 day' WHERE id = :id"),
        {"id": events[1].id},
    )
    report = await verify_chain(session)
    assert report.first_bad_event == str(events[1].id)


async def test_a_seal_rewritten_to_match_an_edit_is_named(session: AsyncSession) -> None:
    # The edit is copied into the sealed content too: the hash no longer covers it.
    events = await sealed_chain_of(session, 4)
    await session.execute(
        text("UPDATE audit_event SET error = 'hidden' WHERE id = :id"), {"id": events[2].id}
    )
    session.expunge_all()
    edited = await session.scalar(select(AuditEvent).where(AuditEvent.id == events[2].id))
    assert edited is not None
    await session.execute(
        text("UPDATE audit_seal SET canonical = :c WHERE event_seq = :s"),
        {"c": canonical_content(vars(edited)), "s": edited.seq},
    )
    report = await verify_chain(session)
    assert (report.first_bad_event, (report.reason or "")[:6]) == (str(events[2].id), "edited")


async def test_deleted_row_names_the_event_after_the_gap(session: AsyncSession) -> None:
    events = await sealed_chain_of(session, 6)
    await session.execute(text("DELETE FROM audit_event WHERE id = :id"), {"id": events[2].id})
    report = await verify_chain(session, batch_size=2)
    assert not report.ok
    assert report.first_bad_event == str(events[3].id)
    assert report.reason is not None
    assert report.reason.startswith("the event before it was removed")


async def test_deleted_first_row_is_caught(session: AsyncSession) -> None:
    events = await sealed_chain_of(session, 3)
    await session.execute(text("DELETE FROM audit_event WHERE id = :id"), {"id": events[0].id})
    report = await verify_chain(session)
    assert report.first_bad_event == str(events[1].id)


async def test_reordered_rows_are_named(session: AsyncSession) -> None:
    events = await sealed_chain_of(session, 6)
    first, second = await _seal_of(session, events[2]), await _seal_of(session, events[3])
    # Swap their places in the chain, keeping every byte of their seals.
    swaps = ((first.position, -1), (second.position, first.position), (-1, second.position))
    for old_position, new_position in swaps:
        await session.execute(
            text("UPDATE audit_seal SET position = :new WHERE position = :old"),
            {"old": old_position, "new": new_position},
        )
    report = await verify_chain(session)
    assert not report.ok
    assert report.first_bad_event == str(events[3].id)
    assert report.reason is not None
    assert report.reason.startswith("reordered")


async def test_inserted_row_is_named(session: AsyncSession) -> None:
    events = await sealed_chain_of(session, 4)
    # A forged event, properly sealed onto events[1], slipped in just after it.
    forged = await append_at(session, NOW, user_id="mallory")
    await seal_now(session)
    after = await _seal_of(session, events[1])
    session.expunge_all()
    await session.execute(
        text("UPDATE audit_seal SET position = position + 100 WHERE position > :p"),
        {"p": after.position},
    )
    rehashed = chain_hash(after.hash, canonical_content(vars(forged)))
    await session.execute(
        text(
            "UPDATE audit_seal SET position = :p, prev_hash = :prev, hash = :h WHERE event_seq = :s"
        ),
        {"p": after.position + 1, "prev": after.hash, "h": rehashed, "s": forged.seq},
    )
    report = await verify_chain(session)
    assert report.first_bad_event == str(forged.id)
    assert report.reason is not None
    assert report.reason.startswith("inserted")


async def test_prune_keeps_the_chain_verifiable(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        old = await chain_of(session, 25, start=NOW - timedelta(days=100))
        kept = await chain_of(session, 5, start=NOW - timedelta(days=10))
        await seal_now(session)
    report = await prune_audit(sessions, 90, now=NOW, batch_size=10)
    assert (report.pruned, report.checkpoints, report.last_seq) == (25, 3, old[-1].seq)
    async with sessions() as session:
        remaining = list(await session.scalars(select(AuditEvent.id).order_by(AuditEvent.seq)))
        checkpoint = await session.scalar(
            select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1)
        )
        old_seal_hash = await session.scalar(
            select(AuditSeal.prev_hash).where(AuditSeal.event_seq == kept[0].seq)
        )
    assert remaining == [event.id for event in kept]
    assert checkpoint is not None
    assert (checkpoint.last_seq, checkpoint.last_position) == (old[-1].seq, 25)
    assert checkpoint.last_hash == old_seal_hash
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
        await seal_now(session)
    verified = await verify_audit_chain(sessions)
    assert (verified.ok, verified.checked) == (True, 6)


async def test_prune_everything_then_append(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        await chain_of(session, 3, start=NOW - timedelta(days=200))
        await seal_now(session)
    assert (await prune_audit(sessions, 90, now=NOW)).pruned == 3
    async with sessions() as session, session.begin():
        event = await record_event(
            session,
            origin="CONTROL",
            actor=WORKER,
            target=Target("g", "u", "GRANT"),
            action="EXPIRED",
        )
        assert (await seal_now(session)).sealed == 1
        seal = await _seal_of(session, event)
    assert (seal.position, seal.prev_hash != GENESIS_HASH) == (4, True)
    assert (await verify_audit_chain(sessions)).ok


async def test_unsealed_events_are_never_pruned(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        await chain_of(session, 2, start=NOW - timedelta(days=200))
    assert (await prune_audit(sessions, 90, now=NOW)).pruned == 0
    async with sessions() as session:
        assert len(list(await session.scalars(select(AuditEvent.seq)))) == 2


async def test_deleting_after_a_checkpoint_is_caught(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        await chain_of(session, 3, start=NOW - timedelta(days=200))
        kept = await chain_of(session, 3, start=NOW)
        await seal_now(session)
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
        await seal_now(session)
    real_batch = store.sealed_batch
    calls = 0

    async def batch_then_prune(session: AsyncSession, after: int, size: int) -> list[Record]:
        nonlocal calls
        calls += 1
        if calls == 2:  # another process prunes while the walk is under way
            await prune_audit(sessions, 90, now=NOW, verify_first=False)
        return await real_batch(session, after, size)

    monkeypatch.setattr(store, "sealed_batch", batch_then_prune)
    report = await verify_chain(sessions, batch_size=2)
    assert report.ok, report


async def test_prune_refuses_to_vouch_for_a_broken_chain(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        events = await chain_of(session, 4, start=NOW - timedelta(days=200))
        await seal_now(session)
        await session.execute(text("DELETE FROM audit_event WHERE id = :id"), {"id": events[1].id})
    with pytest.raises(PruneRefused, match="broken"):
        await prune_audit(sessions, 90, now=NOW)
    async with sessions() as session:
        assert await session.scalar(select(AuditCheckpoint.id).limit(1)) is None
