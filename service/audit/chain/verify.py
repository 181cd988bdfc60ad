"""Verifying the chain: the signatures, the walk, and what must lie at or after its end."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.audit import store
from service.audit.chain.reports import VERIFY_BATCH, ChainReport, Expectation
from service.audit.chain.walk import Walk, walk_seals
from service.audit.sealer import checkpoint_facts
from service.audit.signing import AuditSigner
from service.models import AuditSignedCheckpoint


def _signature_problem(
    checkpoints: list[AuditSignedCheckpoint], signer: AuditSigner | None
) -> str | None:
    if not checkpoints:
        return None
    if signer is None:
        return "no audit signing key is configured, so the checkpoint signatures cannot be checked"
    for checkpoint in checkpoints:
        if checkpoint.key_id != signer.key_id:
            return f"the checkpoint at count {checkpoint.position} is signed by another key"
        if not signer.verifies(checkpoint_facts(checkpoint), checkpoint.signature):
            return f"the checkpoint at count {checkpoint.position} has a forged signature"
    return None


async def _expectation_problem(
    session: AsyncSession, walk: Walk, start: store.ChainHead
) -> str | None:
    expect = walk.expect
    if expect is None or walk.expect_seen:
        return None
    # The expected event may have been pruned past retention; only a kept signed checkpoint
    # for it, at or before the pruning cut, says so.
    signed = await store.signed_checkpoint_for(session, expect.seq)
    if signed is not None and signed.position <= start.position and signed.hash == expect.hash:
        return None
    return f"missing: the expected checkpoint's event {expect.seq} is not in the chain"


async def _head_problem(
    session: AsyncSession, walk: Walk, start: store.ChainHead, signed_head: int | None
) -> str | None:
    if signed_head is not None and signed_head > walk.head.position:
        return (
            f"missing: the chain ends at count {walk.head.position}, but a checkpoint was "
            f"signed at count {signed_head}"
        )
    return await _expectation_problem(session, walk, start)


async def _verify(
    session: AsyncSession,
    signer: AuditSigner | None,
    expect: Expectation | None,
    batch_size: int,
) -> ChainReport:
    checkpoints = await store.signed_checkpoints(session)
    start = await store.pruning_start(session) or store.GENESIS
    return await verify_from(session, signer, expect, batch_size, start, checkpoints)


async def verify_from(
    session: AsyncSession,
    signer: AuditSigner | None,
    expect: Expectation | None,
    batch_size: int,
    start: store.ChainHead,
    checkpoints: list[AuditSignedCheckpoint],
) -> ChainReport:
    signature_problem = _signature_problem(checkpoints, signer)
    if signature_problem is not None:
        return ChainReport(False, 0, None, signature_problem)
    marks = {c.position: c.hash for c in checkpoints if c.position > start.position}
    walk = Walk(start, marks, expect)
    async with store.serial_reads(session):
        problem = await walk_seals(session, walk, batch_size)
    if problem is not None:
        return problem
    signed_head = max(marks, default=None)
    head_problem = await _head_problem(session, walk, start, signed_head)
    if head_problem is not None:
        return ChainReport(False, walk.checked, None, head_problem)
    pending, skipped = await store.unsealed_counts(session, walk.head, start)
    if skipped is not None:
        return ChainReport(False, walk.checked, str(skipped), "skipped: committed but never sealed")
    return ChainReport(True, walk.checked, pending=pending, checkpoint=signed_head)


async def verify_chain(
    source: AsyncSession | async_sessionmaker[AsyncSession],
    *,
    signer: AuditSigner | None = None,
    expect: Expectation | None = None,
    batch_size: int = VERIFY_BATCH,
) -> ChainReport:
    """Walk the sealed chain from the latest pruning checkpoint (or the genesis hash)."""
    if isinstance(source, AsyncSession):
        return await _verify(source, signer, expect, batch_size)
    async with source() as session:
        return await _verify(session, signer, expect, batch_size)


async def verify_audit_chain(
    sessions: async_sessionmaker[AsyncSession],
    signer: AuditSigner | None = None,
    expect: Expectation | None = None,
) -> ChainReport:
    """The CLI's ``tsprov audit verify``."""
    return await verify_chain(sessions, signer=signer, expect=expect)
