"""The console's bounded verify: the checks of ``verify_chain`` over the newest events only."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from service.audit import store
from service.audit.chain import VERIFY_BATCH, ChainReport, verify_from
from service.audit.signing import AuditSigner


async def verify_recent(
    session: AsyncSession, *, signer: AuditSigner | None, last: int, batch_size: int = VERIFY_BATCH
) -> ChainReport:
    """The checks of ``verify_chain`` over the last ``last`` sealed events only.

    The walk starts from the hash sealed just before them, taken as given, so its cost is
    bounded whatever the trail's size; only the signed checkpoints inside that stretch are
    checked. A full walk (``tsprov audit verify``) is what proves the whole trail.
    """
    start = await store.pruning_start(session) or store.GENESIS
    head = await store.chain_head(session)
    if head.position - last > start.position:
        position = head.position - last
        found = await store.chain_head_at(session, position)
        if found is None:
            # A seal missing inside the chain is a break; walking from the beginning instead
            # would make this bounded check as long as a full verify.
            return ChainReport(
                False,
                0,
                None,
                f"missing: no seal at position {position}; run `tsprov audit verify`",
            )
        start = found
    checkpoints = await store.signed_checkpoints(session, after_position=start.position)
    return await verify_from(session, signer, None, batch_size, start, checkpoints)
