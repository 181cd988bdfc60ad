"""The chain's side of the audit tables: heads, seals, signed checkpoints, what is pending.

The horizon is the oldest transaction still running *in this database*, other than the
caller's own: every transaction below it has committed or rolled back, so no event written
below it can still appear. Transactions of other databases on the same server are left out
(they cannot write here), so a long query elsewhere does not hold sealing back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, NamedTuple

from asyncpg import Record
from sqlalchemy import (
    Row,
    Select,
    insert,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession

from service.models import (
    AuditCheckpoint,
    AuditEvent,
    AuditSeal,
    AuditSignedCheckpoint,
)

GENESIS_HASH = bytes(32)
# The audit_event columns the hash covers; readers that skip the ORM select exactly these.
CONTENT_COLUMNS = (
    "id",
    "event_time",
    "event_group_id",
    "origin",
    "actor",
    "target",
    "action",
    "event_name",
    "old",
    "new",
    "action_details",
    "error",
    "user_id",
)

# Evaluated inside each statement that uses it, so it and the rows read share one snapshot.
HORIZON = """
    COALESCE(
        (SELECT min(running) FROM pg_snapshot_xip(pg_current_snapshot()) AS running
         WHERE xid(running) NOT IN (
             SELECT backend_xid FROM pg_stat_activity
             WHERE backend_xid IS NOT NULL AND datname IS DISTINCT FROM current_database())),
        pg_snapshot_xmax(pg_current_snapshot()))
"""
# Both statements are built from this module's constants; every value is a bound parameter.
_SEALABLE = text(
    f"""
    SELECT seq, xid, {", ".join(CONTENT_COLUMNS)} FROM audit_event
    WHERE (xid, seq) > (CAST(:xid AS xid8), :seq) AND xid < {HORIZON}
    ORDER BY xid, seq LIMIT :size
    """  # noqa: S608
)
# The event's columns in the content's own forms, compared with what was sealed in Python:
# cheaper than parsing every sealed content as jsonb in the database. The four JSON columns
# come as one JSON array, joined as text (a jsonb array cost the database about 5 µs a row;
# joining text costs it little, and saves the reader three column decodes and three parses).
# A NULL column becomes JSON null, which the content writes for no value all the same.
_SEALED_BATCH = """
    SELECT s.position, s.prev_hash, s.hash, s.canonical, e.seq, e.xid, e.id::text,
           to_char(e.event_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
           e.event_group_id, e.origin, e.action, e.event_name, e.action_details, e.error,
           e.user_id,
           '[' || COALESCE(e.actor::text, 'null') || ',' || COALESCE(e.target::text, 'null')
           || ',' || COALESCE(e.old::text, 'null') || ',' || COALESCE(e.new::text, 'null') || ']'
    FROM audit_seal s LEFT JOIN audit_event e ON e.seq = s.event_seq
    WHERE s.position > $1 ORDER BY s.position LIMIT $2
"""


class SealedRow(NamedTuple):
    """A seal and its event's columns (all None when the event is gone)."""

    position: int
    prev_hash: bytes
    hash: bytes
    canonical: bytes
    seq: int | None
    xid: int | None
    id: str | None
    time: str | None
    event_group_id: str | None
    origin: str | None
    action: str | None
    event_name: str | None
    action_details: str | None
    error: str | None
    user_id: str | None
    # ``[actor, target, old, new]`` as JSON text (all null when the event is gone).
    json_columns: str


class ChainHead(NamedTuple):
    """The last sealed event (or where pruning cut the chain): what the next seal links to."""

    position: int
    hash: bytes
    xid: int
    seq: int


GENESIS = ChainHead(0, GENESIS_HASH, 0, 0)


def _heads() -> Select[int, bytes, int, int]:
    return select(AuditSeal.position, AuditSeal.hash, AuditEvent.xid, AuditEvent.seq).join(
        AuditEvent, AuditEvent.seq == AuditSeal.event_seq
    )


async def chain_head(session: AsyncSession) -> ChainHead:
    last = (await session.execute(_heads().order_by(AuditSeal.position.desc()).limit(1))).first()
    if last is not None:
        return ChainHead(last.position, last.hash, last.xid, last.seq)
    return await pruning_start(session) or GENESIS


async def chain_head_at(session: AsyncSession, position: int) -> ChainHead | None:
    """The chain as it stood once ``position`` was sealed; None if that seal is gone."""
    row = (await session.execute(_heads().where(AuditSeal.position == position))).first()
    return ChainHead(row.position, row.hash, row.xid, row.seq) if row is not None else None


async def pruning_start(session: AsyncSession) -> ChainHead | None:
    """Where the kept chain starts: the latest pruning checkpoint, if any."""
    row = (
        await session.execute(
            select(
                AuditCheckpoint.last_position,
                AuditCheckpoint.last_hash,
                AuditCheckpoint.last_xid,
                AuditCheckpoint.last_seq,
            )
            .order_by(AuditCheckpoint.id.desc())
            .limit(1)
        )
    ).first()
    return ChainHead(*row) if row is not None else None


async def sealable_events(session: AsyncSession, after: ChainHead, size: int) -> list[Row[Any]]:
    """Final events after ``after`` in chain order: (writing transaction, seq)."""
    params = {"xid": after.xid, "seq": after.seq, "size": size}
    return list((await session.execute(_SEALABLE, params)).all())


async def insert_seals(session: AsyncSession, seals: Sequence[dict[str, Any]]) -> None:
    await session.execute(insert(AuditSeal), list(seals))


async def sealed_batch(session: AsyncSession, after_position: int, size: int) -> list[Record]:
    """Seals after ``after_position`` with their events (absent when deleted), in order.

    Read through the driver: at a million rows SQLAlchemy's row and JSON processing would
    cost more than the checks themselves. It runs in the session's own transaction.
    """
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    if driver is None:
        raise RuntimeError("the database connection has no driver connection")
    # Plain records in SealedRow's column order: a tuple per row would cost more than checking it.
    records: list[Record] = await driver.fetch(_SEALED_BATCH, after_position, size)
    return records


@asynccontextmanager
async def serial_reads(session: AsyncSession) -> AsyncIterator[None]:
    """Plan the reads inside without parallel workers, then restore the session's setting.

    The walk's read is one ordered index scan whose rows all go to one reader. Parallel
    workers gathering it cost the server more CPU in all (about 8 µs a row instead of 5) and
    take the cores the reader needs.
    """
    setting = "max_parallel_workers_per_gather"
    before = await session.scalar(text("SELECT current_setting(:name)"), {"name": setting})
    await session.execute(text("SELECT set_config(:name, '0', true)"), {"name": setting})
    yield
    # Not on an error: the transaction is then rolled back, and the setting with it.
    restore = text("SELECT set_config(:name, :value, true)")
    await session.execute(restore, {"name": setting, "value": before})


async def seal_with_hash(session: AsyncSession, digest: bytes) -> tuple[int, Any] | None:
    """``(position, event id)`` of the seal whose hash is ``digest``."""
    row = (
        await session.execute(
            select(AuditSeal.position, AuditSeal.event_seq).where(AuditSeal.hash == digest)
        )
    ).first()
    if row is None:
        return None
    event_id = await session.scalar(select(AuditEvent.id).where(AuditEvent.seq == row.event_seq))
    return row.position, event_id


async def event_id_at(session: AsyncSession, position: int) -> Any:
    return await session.scalar(
        select(AuditEvent.id)
        .join(AuditSeal, AuditSeal.event_seq == AuditEvent.seq)
        .where(AuditSeal.position == position)
    )


async def pending_count(session: AsyncSession, head: ChainHead) -> int:
    """How many events wait for the sealer beyond ``head`` (an index range, not a scan)."""
    pending = await session.scalar(
        text("SELECT count(*) FROM audit_event WHERE (xid, seq) > (CAST(:xid AS xid8), :seq)"),
        {"xid": head.xid, "seq": head.seq},
    )
    return int(pending or 0)


async def unsealed_counts(
    session: AsyncSession, head: ChainHead, since: ChainHead = GENESIS
) -> tuple[int, Any]:
    """How many events wait for the sealer, and the id of one left behind the head, after
    ``since``, if any."""
    pending = await pending_count(session, head)
    skipped = await session.scalar(
        text(
            "SELECT e.id FROM audit_event e WHERE (e.xid, e.seq) < (CAST(:xid AS xid8), :seq) "
            "AND (e.xid, e.seq) > (CAST(:since_xid AS xid8), :since_seq) "
            "AND NOT EXISTS (SELECT FROM audit_seal s WHERE s.event_seq = e.seq) "
            "ORDER BY e.xid, e.seq LIMIT 1"
        ),
        {"xid": head.xid, "seq": head.seq, "since_xid": since.xid, "since_seq": since.seq},
    )
    return pending, skipped


async def add_signed_checkpoint(session: AsyncSession, **values: Any) -> AuditSignedCheckpoint:
    checkpoint = AuditSignedCheckpoint(**values)
    session.add(checkpoint)
    await session.flush()
    return checkpoint


async def signed_checkpoints(
    session: AsyncSession,
    *,
    before_position: int | None = None,
    after_position: int | None = None,
    limit: int | None = None,
) -> list[AuditSignedCheckpoint]:
    """Signed checkpoints, newest first."""
    query = select(AuditSignedCheckpoint).order_by(AuditSignedCheckpoint.position.desc())
    if before_position is not None:
        query = query.where(AuditSignedCheckpoint.position < before_position)
    if after_position is not None:
        query = query.where(AuditSignedCheckpoint.position > after_position)
    if limit is not None:
        query = query.limit(limit)
    return list(await session.scalars(query))


async def signed_checkpoint_for(session: AsyncSession, seq: int) -> AuditSignedCheckpoint | None:
    return await session.scalar(
        select(AuditSignedCheckpoint).where(AuditSignedCheckpoint.event_seq == seq).limit(1)
    )


# Built once: constructing an ORM insert per event cost more than executing it.
