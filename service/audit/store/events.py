"""The events' side of the audit tables: reading pages, links, pruning (appending: appends.py)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.asyncio import AsyncSession

from service.models import (
    AuditCheckpoint,
    AuditEvent,
    AuditLink,
    AuditSeal,
)

ReadEventRow = tuple[AuditEvent, str | None, bytes | None, bytes | None]


def _linked_and_sealed() -> Select[AuditEvent, str, bytes, bytes]:
    """Events with their upstream link and chain fields, sealed or not."""
    return (
        select(AuditEvent, AuditLink.upstream_event_group_id, AuditSeal.prev_hash, AuditSeal.hash)
        .outerjoin(AuditLink, AuditLink.event_id == AuditEvent.id)
        .outerjoin(AuditSeal, AuditSeal.event_seq == AuditEvent.seq)
    )


async def events_page(
    session: AsyncSession,
    conditions: Sequence[ColumnElement[bool]],
    after: tuple[datetime, int] | None,
    limit: int,
) -> list[ReadEventRow]:
    """Events in time order, sealed or not, with their upstream link and chain fields."""
    query = (
        _linked_and_sealed()
        .where(*conditions)
        .order_by(AuditEvent.event_time, AuditEvent.seq)
        .limit(limit)
    )
    if after is not None:
        query = query.where(tuple_(AuditEvent.event_time, AuditEvent.seq) > tuple_(*after))
    return [(row[0], row[1], row[2], row[3]) for row in await session.execute(query)]


async def events_about(
    session: AsyncSession,
    user_id: str,
    target_ids: Sequence[str],
    window: tuple[datetime, datetime],
    limit: int,
) -> list[ReadEventRow]:
    """A user's events naming one of ``target_ids``, in time order, within ``window``.

    Served by ``ix_audit_event_user`` (user, time): the window keeps it to the stretch of
    one user's trail that a request lived through.
    """
    query = (
        _linked_and_sealed()
        .where(
            AuditEvent.user_id == user_id,
            AuditEvent.event_time >= window[0],
            AuditEvent.event_time <= window[1],
            AuditEvent.target["id"].astext.in_(target_ids),
        )
        .order_by(AuditEvent.event_time, AuditEvent.seq)
        .limit(limit)
    )
    return [(row[0], row[1], row[2], row[3]) for row in await session.execute(query)]


# The key is spelled out, not bound: only then does the planner match ix_audit_event_actor.
_LATEST_ACTIONS = text(
    """
    SELECT ids.id, (SELECT max(e.event_time) FROM audit_event e WHERE e.actor ->> 'id' = ids.id)
    FROM unnest(CAST(:ids AS text[])) AS ids(id)
    """
)


async def latest_action_times(session: AsyncSession, actor_ids: Sequence[str]) -> dict[str, Any]:
    """When each actor last did something audited (one index probe per actor), absent when
    never."""
    if not actor_ids:
        return {}
    rows = await session.execute(_LATEST_ACTIONS, {"ids": list(actor_ids)})
    return {actor_id: at for actor_id, at in rows if at is not None}


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
