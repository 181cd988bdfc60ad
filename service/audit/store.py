"""Every query on the audit tables: events, seals, signed and pruning checkpoints, links.

The horizon is the oldest transaction still running *in this database*, other than the
caller's own: every transaction below it has committed or rolled back, so no event written
below it can still appear. Transactions of other databases on the same server are left out
(they cannot write here), so a long query elsewhere does not hold sealing back.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Row,
    bindparam,
    func,
    insert,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.asyncio import AsyncSession

from service.models import (
    AuditCheckpoint,
    AuditEvent,
    AuditLink,
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
# come as one array, to be parsed once.
_SEALED_BATCH = """
    SELECT s.position, s.prev_hash, s.hash, s.canonical, e.seq, e.xid, e.id::text,
           to_char(e.event_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
           e.event_group_id, e.origin, e.action, e.event_name, e.action_details, e.error,
           e.user_id, jsonb_build_array(e.actor, e.target, e.old, e.new)::text
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
    json_columns: str | None


@dataclass(frozen=True)
class ChainHead:
    """The last sealed event (or where pruning cut the chain): what the next seal links to."""

    position: int
    hash: bytes
    xid: int
    seq: int


GENESIS = ChainHead(0, GENESIS_HASH, 0, 0)


async def chain_head(session: AsyncSession) -> ChainHead:
    last = (
        await session.execute(
            select(AuditSeal.position, AuditSeal.hash, AuditEvent.xid, AuditEvent.seq)
            .join(AuditEvent, AuditEvent.seq == AuditSeal.event_seq)
            .order_by(AuditSeal.position.desc())
            .limit(1)
        )
    ).first()
    if last is not None:
        return ChainHead(last.position, last.hash, last.xid, last.seq)
    return await pruning_start(session) or GENESIS


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


async def sealed_batch(session: AsyncSession, after_position: int, size: int) -> list[SealedRow]:
    """Seals after ``after_position`` with their events (absent when deleted), in order.

    Read through the driver: at a million rows SQLAlchemy's row and JSON processing would
    cost more than the checks themselves. It runs in the session's own transaction.
    """
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    if driver is None:
        raise RuntimeError("the database connection has no driver connection")
    records = await driver.fetch(_SEALED_BATCH, after_position, size)
    return [SealedRow._make(record) for record in records]


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


async def unsealed_counts(session: AsyncSession, head: ChainHead) -> tuple[int, Any]:
    """How many events wait for the sealer, and the id of one left behind the head if any."""
    pending = await pending_count(session, head)
    skipped = await session.scalar(
        text(
            "SELECT e.id FROM audit_event e WHERE (e.xid, e.seq) < (CAST(:xid AS xid8), :seq) "
            "AND NOT EXISTS (SELECT FROM audit_seal s WHERE s.event_seq = e.seq) "
            "ORDER BY e.xid, e.seq LIMIT 1"
        ),
        {"xid": head.xid, "seq": head.seq},
    )
    return pending, skipped


async def add_signed_checkpoint(session: AsyncSession, **values: Any) -> AuditSignedCheckpoint:
    checkpoint = AuditSignedCheckpoint(**values)
    session.add(checkpoint)
    await session.flush()
    return checkpoint


async def signed_checkpoints(
    session: AsyncSession, *, before_position: int | None = None, limit: int | None = None
) -> list[AuditSignedCheckpoint]:
    """Signed checkpoints, newest first."""
    query = select(AuditSignedCheckpoint).order_by(AuditSignedCheckpoint.position.desc())
    if before_position is not None:
        query = query.where(AuditSignedCheckpoint.position < before_position)
    if limit is not None:
        query = query.limit(limit)
    return list(await session.scalars(query))


async def signed_checkpoint_for(session: AsyncSession, seq: int) -> AuditSignedCheckpoint | None:
    return await session.scalar(
        select(AuditSignedCheckpoint).where(AuditSignedCheckpoint.event_seq == seq).limit(1)
    )


# Built once: constructing an ORM insert per event cost more than executing it.
_INSERT_EVENT = (
    insert(AuditEvent)
    .values(
        {
            **{name: bindparam(name) for name in CONTENT_COLUMNS if name != "event_time"},
            **{name: bindparam(name, type_=JSONB) for name in ("actor", "target", "old", "new")},
            # Correlation with the logs, outside the hashed content.
            "request_id": bindparam("request_id"),
            # Never behind the newest committed event: replicas' clocks differ.
            "event_time": func.greatest(
                bindparam("now", type_=DateTime(timezone=True)),
                select(func.max(AuditEvent.event_time)).scalar_subquery(),
            ),
        }
    )
    .returning(AuditEvent)
)


async def insert_event(session: AsyncSession, now: datetime, **values: Any) -> AuditEvent:
    """One event, in one statement; its id is new and its time at least ``now``."""
    params = {"id": uuid.uuid4(), "now": now, **values}
    return (await session.execute(_INSERT_EVENT, params)).scalar_one()


ReadEventRow = tuple[AuditEvent, str | None, bytes | None, bytes | None]


async def events_page(
    session: AsyncSession,
    conditions: Sequence[ColumnElement[bool]],
    after: tuple[datetime, int] | None,
    limit: int,
) -> list[ReadEventRow]:
    """Events in time order, sealed or not, with their upstream link and chain fields."""
    query = (
        select(AuditEvent, AuditLink.upstream_event_group_id, AuditSeal.prev_hash, AuditSeal.hash)
        .outerjoin(AuditLink, AuditLink.event_id == AuditEvent.id)
        .outerjoin(AuditSeal, AuditSeal.event_seq == AuditEvent.seq)
        .where(*conditions)
        .order_by(AuditEvent.event_time, AuditEvent.seq)
        .limit(limit)
    )
    if after is not None:
        query = query.where(tuple_(AuditEvent.event_time, AuditEvent.seq) > tuple_(*after))
    return [(row[0], row[1], row[2], row[3]) for row in await session.execute(query)]


async def unlinked_node_events(
    session: AsyncSession, event_name: str, node_ids: set[str], names: set[str]
) -> list[AuditEvent]:
    query = (
        select(AuditEvent)
        .outerjoin(AuditLink, AuditLink.event_id == AuditEvent.id)
        .where(
            AuditEvent.event_name == event_name,
            AuditLink.event_id.is_(None),
            or_(
                AuditEvent.target["id"].astext.in_(node_ids),
                AuditEvent.target["name"].astext.in_(names),
            ),
        )
        .order_by(AuditEvent.seq)
    )
    return list(await session.scalars(query))


async def link_event(session: AsyncSession, event_id: uuid.UUID, upstream_group: str) -> bool:
    """Whether this link was stored; another replica may have linked the event first."""
    inserted = await session.scalar(
        upsert(AuditLink)
        .values(event_id=event_id, upstream_event_group_id=upstream_group)
        .on_conflict_do_nothing(index_elements=[AuditLink.event_id])
        .returning(AuditLink.event_id)
    )
    return inserted is not None


# Seals go with their events (ON DELETE CASCADE).
_PRUNE_BATCH = text(
    """
    WITH doomed AS (
        SELECT position, hash, event_seq FROM audit_seal
        WHERE position < :bound ORDER BY position LIMIT :size
    ), gone AS (
        DELETE FROM audit_event e USING doomed d WHERE e.seq = d.event_seq
        RETURNING d.position, d.hash, e.seq, e.xid
    ), last AS (
        SELECT position, hash, seq, xid FROM gone ORDER BY position DESC LIMIT 1
    )
    SELECT (SELECT count(*) FROM gone) AS pruned, last.* FROM last
    """
)
_FIRST_KEPT = text(
    """
    SELECT COALESCE(
        (SELECT min(s.position) FROM audit_seal s JOIN audit_event e ON e.seq = s.event_seq
         WHERE e.event_time >= :cutoff),
        (SELECT max(position) + 1 FROM audit_seal))
    """
)


async def first_kept_position(session: AsyncSession, cutoff: datetime) -> int | None:
    """The chain position pruning stops before: the first sealed event young enough to keep."""
    first: int | None = await session.scalar(_FIRST_KEPT, {"cutoff": cutoff})
    return first


async def prune_batch(session: AsyncSession, bound: int, size: int) -> tuple[int, int | None]:
    """Delete one batch and record its checkpoint; both commit together or not at all."""
    row = (await session.execute(_PRUNE_BATCH, {"bound": bound, "size": size})).first()
    if row is None:
        return 0, None
    total_before = await session.scalar(
        select(AuditCheckpoint.pruned_count).order_by(AuditCheckpoint.id.desc()).limit(1)
    )
    session.add(
        AuditCheckpoint(
            last_seq=row.seq,
            last_position=row.position,
            last_xid=row.xid,
            last_hash=row.hash,
            pruned_count=(total_before or 0) + row.pruned,
        )
    )
    await session.flush()
    return int(row.pruned), int(row.seq)
