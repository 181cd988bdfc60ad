"""Checking the audit hash chain: the first event edited, removed, inserted or reordered.

The walk follows ``seq`` in batches at constant memory. Gaps in ``seq`` prove nothing
(an identity value is spent by every rolled-back insert), so removal is judged only by
``prev_hash`` linkage: each event must name the hash of the event before it, or of the
latest pruning checkpoint for the first one kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.audit.events import CONTENT_COLUMNS, GENESIS_HASH, chain_hash, content_of
from service.models import AuditCheckpoint, AuditEvent

VERIFY_BATCH = 2000
_COLUMNS = [getattr(AuditEvent, name) for name in ("seq", *CONTENT_COLUMNS, "hash")]


@dataclass(frozen=True)
class ChainReport:
    """``first_bad_event`` is the id of the first event out of place, ``reason`` says how."""

    ok: bool
    checked: int
    first_bad_event: str | None = None
    reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "first_bad_event": self.first_bad_event,
            "reason": self.reason,
        }


@dataclass
class _Walk:
    after_seq: int
    expected_prev: bytes
    checked: int = 0


async def _latest_checkpoint(session: AsyncSession) -> tuple[int, bytes] | None:
    row = (
        await session.execute(
            select(AuditCheckpoint.last_seq, AuditCheckpoint.last_hash)
            .order_by(AuditCheckpoint.id.desc())
            .limit(1)
        )
    ).first()
    return (row.last_seq, row.last_hash) if row is not None else None


async def _batch(session: AsyncSession, after_seq: int, size: int) -> list[Row[Any]]:
    query = select(*_COLUMNS).where(AuditEvent.seq > after_seq).order_by(AuditEvent.seq).limit(size)
    return list((await session.execute(query)).all())


async def _pruned_meanwhile(session: AsyncSession, walk: _Walk, row: Row[Any]) -> bool:
    """Whether a prune that committed during the walk explains a break in the linkage."""
    checkpoint = await _latest_checkpoint(session)
    if checkpoint is None:
        return False
    last_seq, last_hash = checkpoint
    return bool(walk.after_seq <= last_seq < row.seq and last_hash == row.prev_hash)


async def _broken_link(session: AsyncSession, row: Row[Any]) -> ChainReport:
    """Tell a removal from a reordering or an insertion by where the named predecessor is."""
    predecessor = await session.scalar(
        select(AuditEvent.seq).where(AuditEvent.hash == row.prev_hash).limit(1)
    )
    if predecessor is None:
        reason = "the event before it was removed (or rewritten): its prev_hash matches nothing"
        return ChainReport(False, 0, str(row.id), reason)
    if predecessor > row.seq:
        reason = "reordered: the event it follows in the chain comes after it"
        return ChainReport(False, 0, str(row.id), reason)
    intruder = await session.scalar(
        select(AuditEvent.id).where(AuditEvent.seq > predecessor).order_by(AuditEvent.seq).limit(1)
    )
    reason = "inserted: this event is not part of the chain"
    return ChainReport(False, 0, str(intruder), reason)


async def _check_row(session: AsyncSession, walk: _Walk, row: Row[Any]) -> ChainReport | None:
    if row.prev_hash != walk.expected_prev and not await _pruned_meanwhile(session, walk, row):
        broken = await _broken_link(session, row)
        return ChainReport(False, walk.checked, broken.first_bad_event, broken.reason)
    if chain_hash(row.prev_hash, content_of(row._asdict())) != row.hash:
        reason = "edited: its content no longer matches its hash"
        return ChainReport(False, walk.checked, str(row.id), reason)
    return None


async def _walk_chain(session: AsyncSession, batch_size: int) -> ChainReport:
    checkpoint = await _latest_checkpoint(session)
    walk = _Walk(*checkpoint) if checkpoint is not None else _Walk(0, GENESIS_HASH)
    while rows := await _batch(session, walk.after_seq, batch_size):
        for row in rows:
            problem = await _check_row(session, walk, row)
            if problem is not None:
                return problem
            walk.after_seq, walk.expected_prev = row.seq, row.hash
            walk.checked += 1
    return ChainReport(True, walk.checked)


async def verify_chain(
    source: AsyncSession | async_sessionmaker[AsyncSession], *, batch_size: int = VERIFY_BATCH
) -> ChainReport:
    """Walk the whole chain from the latest checkpoint (or the genesis hash)."""
    if isinstance(source, AsyncSession):
        return await _walk_chain(source, batch_size)
    async with source() as session:
        return await _walk_chain(session, batch_size)


async def verify_audit_chain(sessions: async_sessionmaker[AsyncSession]) -> ChainReport:
    """The CLI's ``tsprov audit verify``."""
    return await verify_chain(sessions)
