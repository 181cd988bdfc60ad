"""Pruning audit events past retention while keeping the rest of the chain verifiable.

Only sealed events are pruned, as a prefix of the chain. Each deleted batch records an
``audit_checkpoint`` with the last deleted event's position, hash, seq and writing
transaction in the same transaction, so the first event kept still links to something the
verifier trusts and the sealer knows where the chain resumes. The service's own role may
not delete audit rows: pruning runs as the owner.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.audit import store
from service.audit.chain import ChainReport, verify_chain
from service.audit.signing import AuditSigner

PRUNE_BATCH = 10_000
INSUFFICIENT_PRIVILEGE = "42501"


class PruneRefused(RuntimeError):
    """Pruning was not done: the role may not delete, or the chain is already broken."""


@dataclass(frozen=True)
class PruneReport:
    pruned: int
    checkpoints: int
    cutoff: datetime
    last_seq: int | None


async def _ensure_sound(
    sessions: async_sessionmaker[AsyncSession], signer: AuditSigner | None
) -> None:
    # A checkpoint vouches for everything before it; never let it vouch for a broken chain.
    report: ChainReport = await verify_chain(sessions, signer=signer)
    if not report.ok:
        raise PruneRefused(
            f"the audit chain is broken at event {report.first_bad_event} ({report.reason}); "
            "investigate before pruning"
        )


async def prune_audit(
    sessions: async_sessionmaker[AsyncSession],
    retention_days: int,
    *,
    now: datetime | None = None,
    batch_size: int = PRUNE_BATCH,
    verify_first: bool = True,
    signer: AuditSigner | None = None,
) -> PruneReport:
    """Delete events older than ``retention_days``, a batch per short transaction."""
    if retention_days < 1:
        raise ValueError("retention_days must be at least 1")
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    if verify_first:
        await _ensure_sound(sessions, signer)
    pruned = checkpoints = 0
    last_seq: int | None = None
    try:
        async with sessions() as session:
            # The pruned part must be a prefix of the chain: stop at the first event young
            # enough to keep, even if a clock step left older-looking events after it.
            # Unsealed events are never pruned: they are not in the chain yet.
            bound = _bound(await store.first_kept_position(session, cutoff))
        while True:
            async with sessions() as session, session.begin():
                count, batch_last = await store.prune_batch(session, bound, batch_size)
            if count == 0:
                return PruneReport(pruned, checkpoints, cutoff, last_seq)
            pruned, checkpoints, last_seq = pruned + count, checkpoints + 1, batch_last
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == INSUFFICIENT_PRIVILEGE:
            raise PruneRefused(
                "this database role may not delete audit events; prune as the owner "
                "(the role that runs migrations), not the service's role"
            ) from exc
        raise


def _bound(first_kept: int | None) -> int:
    # Nothing sealed at all: there is nothing to prune.
    return first_kept if first_kept is not None else 2**63 - 1
