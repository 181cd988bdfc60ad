"""``tsprov keys rewrap``: move every sealed value to the primary key.

Row by row, each batch in its own short transaction with ``SKIP LOCKED``, so it never makes
the running service wait and can be stopped and started again at any point. A skipped row is
still under its old key, and removing that key would make it undecryptable; so rewrap comes
back for whatever is left until nothing is, or reports how much it could not move.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, LargeBinary, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.crypto.keyring import KeyRing, key_prefix
from service.crypto.sealed import SEALED_COLUMNS, SealedColumn
from service.db import transaction

BATCH = 200
# A grant stays locked across its upstream refresh, which may take the whole upstream
# deadline (20 s by default); the passes outlast that.
PASSES = 30
PAUSE_SECONDS = 1.0

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class RewrapReport:
    """What a rewrap did: ``remaining`` values are still under other keys."""

    moved: int
    remaining: int

    @property
    def complete(self) -> bool:
        """True when the keys other than the primary can be removed from the ring."""
        return self.remaining == 0


async def rewrap_all(
    sessions: async_sessionmaker[AsyncSession],
    key_ring: KeyRing,
    *,
    passes: int = PASSES,
    pause_seconds: float = PAUSE_SECONDS,
    sleep: Sleep = asyncio.sleep,
) -> RewrapReport:
    """Re-seal every value not under the primary key; report what moved and what remains.

    Rows another transaction holds are skipped, then retried on up to ``passes`` passes in
    all, ``pause_seconds`` apart. A value under a key missing from the ring raises
    ``UnknownKeyError`` naming it. ``remaining > 0`` means the old keys must stay.
    """
    if passes < 1:
        raise ValueError("rewrap needs at least one pass")
    moved = remaining = 0
    for attempt in range(passes):
        if attempt:
            await sleep(pause_seconds)
        for column in SEALED_COLUMNS:
            moved += await _rewrap_column(sessions, key_ring, column)
        remaining = await _count_stale(sessions, key_ring)
        if remaining == 0:
            break
    return RewrapReport(moved=moved, remaining=remaining)


async def _count_stale(sessions: async_sessionmaker[AsyncSession], key_ring: KeyRing) -> int:
    """How many sealed values, across every sealed column, are under another key."""
    total = 0
    # A plain read: it sees locked rows' committed values without waiting for their locks.
    async with sessions() as session:
        for column in SEALED_COLUMNS:
            query = select(func.count()).select_from(column.model)
            total += await session.scalar(query.where(_not_under(key_ring, column))) or 0
    return total


def _not_under(key_ring: KeyRing, column: SealedColumn) -> ColumnElement[bool]:
    # The key id leads every ciphertext, so Postgres can pick out the stale values itself.
    attribute = getattr(column.model, column.attribute)
    prefix = key_prefix(key_ring.primary_id)
    head = func.substring(attribute, 1, len(prefix), type_=LargeBinary)
    return and_(attribute.is_not(None), head != prefix)


async def _rewrap_column(
    sessions: async_sessionmaker[AsyncSession], key_ring: KeyRing, column: SealedColumn
) -> int:
    moved, last_id = 0, None
    stale = _not_under(key_ring, column)
    while True:
        async with transaction(sessions) as session:
            query = select(column.model).where(stale).order_by(column.model.id).limit(BATCH)
            if last_id is not None:
                query = query.where(column.model.id > last_id)
            rows = list(await session.scalars(query.with_for_update(skip_locked=True)))
            for row in rows:
                _reseal(key_ring, column, row)
        moved += len(rows)
        if len(rows) < BATCH:
            return moved
        last_id = rows[-1].id


def _reseal(key_ring: KeyRing, column: SealedColumn, row: Any) -> None:
    context = column.context(row)
    plain = key_ring.decrypt(getattr(row, column.attribute), context)  # a removed key fails here
    setattr(row, column.attribute, key_ring.encrypt(plain, context))


async def sealed_values_by_key(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    """How many sealed values each key id holds, across every sealed column."""
    counts: dict[str, int] = {}
    async with sessions() as session:
        for column in SEALED_COLUMNS:
            attribute = getattr(column.model, column.attribute)
            # The key id leads every ciphertext, after one byte giving its length.
            key_id = func.convert_from(
                func.substring(attribute, 2, func.get_byte(attribute, 0)), "UTF8"
            )
            query = select(key_id, func.count()).where(attribute.is_not(None)).group_by(key_id)
            for found, count in await session.execute(query):
                counts[found] = counts.get(found, 0) + count
    return counts
