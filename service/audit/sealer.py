"""Linking committed events into the hash chain, then signing and publishing the new head.

Chain order is (writing transaction id, seq), and an event is sealed only once its
transaction id is below the horizon (``store.HORIZON``): every transaction below it has
finished, so nothing can later appear before an event already sealed. docs/architecture.md
("The audit trail: appends without a lock") gives the whole argument.

One sealer runs at a time (the background job's try-lock; a second one would also fail on
the seal's primary key and roll back). Writers never wait for it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from service.audit import store
from service.audit.events import canonical_content, chain_hash
from service.audit.signing import AuditSigner, CheckpointFacts
from service.models import AuditSignedCheckpoint
from service.ops.metrics import Metrics

SEAL_BATCH = 2000
# The background job's lock (jobs.JOB_LOCK_BASE + its id), so the CLI never seals alongside it.
SEALER_LOCK = 0x7473_7072_6F76_1000 + 7
# Bounds one round's transaction; a backlog is worked off over the next ticks.
ROUND_BATCHES = 25
log = logging.getLogger("tsprov.audit")


@dataclass(frozen=True)
class SealRound:
    sealed: int
    checkpoint: AuditSignedCheckpoint | None
    # Events recorded but still outside the chain after the round: the sealer's lag.
    pending: int = 0


async def _seal_batch(session: AsyncSession, head: store.ChainHead, size: int) -> store.ChainHead:
    rows = await store.sealable_events(session, head, size)
    seals = []
    for row in rows:
        canonical = canonical_content(dict(row._mapping))
        digest = chain_hash(head.hash, canonical)
        position = head.position + 1
        seals.append(
            {
                "position": position,
                "event_seq": row.seq,
                "prev_hash": head.hash,
                "hash": digest,
                "canonical": canonical,
            }
        )
        head = store.ChainHead(position, digest, row.xid, row.seq)
    if seals:
        await store.insert_seals(session, seals)
    return head


async def _checkpoint_due(
    session: AsyncSession, head: store.ChainHead, now: datetime, every: timedelta
) -> bool:
    """The head moved past the latest checkpoint, and that one is at least ``every`` old."""
    latest = await store.signed_checkpoints(session, limit=1)
    if not latest:
        return head.position > 0
    return latest[0].position < head.position and latest[0].signed_at <= now - every


async def seal_audit_events(
    session: AsyncSession,
    signer: AuditSigner | None,
    *,
    checkpoint_every: timedelta = timedelta(0),
    batch_size: int = SEAL_BATCH,
    max_batches: int = ROUND_BATCHES,
) -> SealRound:
    """Seal every final event not yet in the chain (up to a round's bound); sign the head.

    The head is signed at most once per ``checkpoint_every``, and also when nothing new was
    sealed this round if the latest checkpoint is behind: a quiet trail still gets its head
    signed one interval after its last event.
    """
    start = head = await store.chain_head(session)
    for _ in range(max_batches):
        before = head.position
        head = await _seal_batch(session, head, batch_size)
        if head.position - before < batch_size:
            break
    sealed = head.position - start.position
    pending = await store.pending_count(session, head)
    now = datetime.now(UTC)
    if signer is None or not await _checkpoint_due(session, head, now, checkpoint_every):
        return SealRound(sealed, None, pending)
    facts = CheckpointFacts(seq=head.seq, count=head.position, hash=head.hash, time=now)
    checkpoint = await store.add_signed_checkpoint(
        session,
        position=head.position,
        event_seq=head.seq,
        hash=head.hash,
        signed_at=facts.time,
        key_id=signer.key_id,
        signature=signer.sign(facts),
    )
    return SealRound(sealed, checkpoint, pending)


async def seal_audit_trail_now(
    sessions: async_sessionmaker[AsyncSession], signer: AuditSigner | None
) -> SealRound:
    """One sealing round in a transaction of its own, unless the background job is sealing."""
    async with sessions() as session, session.begin():
        free = await session.scalar(
            text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": SEALER_LOCK}
        )
        if not free:
            return SealRound(0, None)
        return await seal_audit_events(session, signer)


async def sealer_lag(session: AsyncSession) -> int:
    """Events committed but not yet sealed into the chain, counted now."""
    return await store.pending_count(session, await store.chain_head(session))


def checkpoint_facts(checkpoint: AuditSignedCheckpoint) -> CheckpointFacts:
    return CheckpointFacts(
        seq=checkpoint.event_seq,
        count=checkpoint.position,
        hash=checkpoint.hash,
        time=checkpoint.signed_at,
    )


def checkpoint_json(checkpoint: AuditSignedCheckpoint) -> dict[str, object]:
    """The published form: the signed facts, the key's id and the signature (hex)."""
    return {
        **checkpoint_facts(checkpoint).as_json(),
        "key_id": checkpoint.key_id,
        "signature": checkpoint.signature.hex(),
    }


def publish_after_commit(
    session: AsyncSession, checkpoint: AuditSignedCheckpoint, metrics: Metrics
) -> None:
    """Once the round commits, put the checkpoint where the database's owner cannot reach it.

    A log line (shipped off the host by the log pipeline) and ``/metrics`` (scraped and kept
    by Prometheus); the export stream carries the latest one too.
    """
    published = checkpoint_json(checkpoint)

    def publish(_: Session) -> None:
        log.info(
            "audit checkpoint seq=%s count=%s hash=%s time=%s key_id=%s signature=%s",
            *(published[name] for name in ("seq", "count", "hash", "time", "key_id", "signature")),
        )
        metrics.audit_checkpoint_count.set(checkpoint.position)
        metrics.audit_checkpoint_seq.set(checkpoint.event_seq)
        metrics.audit_checkpoint.info({key: str(value) for key, value in published.items()})

    event.listen(session.sync_session, "after_commit", publish, once=True)
