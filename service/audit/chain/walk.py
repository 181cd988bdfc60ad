"""The walk over the seals, batch by batch: each row plainly in place in a few comparisons,
any other through the full checks, which say what is wrong."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from hashlib import sha256
from itertools import islice

from asyncpg import Record
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit import store
from service.audit.chain.reports import ChainReport, Expectation
from service.audit.events import chain_hash
from service.audit.sealed_content import matches_at_a_glance, sealed_as_stored
from service.audit.store import SealedRow


@dataclass
class Walk:
    head: store.ChainHead
    marks: dict[int, bytes]
    expect: Expectation | None
    checked: int = 0
    expect_seen: bool = False

    def fail(self, event_id: object, reason: str) -> ChainReport:
        return ChainReport(False, self.checked, str(event_id) if event_id else None, reason)


async def _pruned_meanwhile(session: AsyncSession, walk: Walk, row: SealedRow) -> bool:
    """Whether a prune that committed during the walk explains a break in the linkage."""
    start = await store.pruning_start(session)
    if start is None:
        return False
    cut_ahead = walk.head.position <= start.position < row.position
    return bool(cut_ahead and start.hash == row.prev_hash and row.position == start.position + 1)


async def _broken_link(session: AsyncSession, walk: Walk, row: SealedRow) -> ChainReport:
    """Tell a removal from a reordering or an insertion by where the named predecessor is."""
    found = await store.seal_with_hash(session, row.prev_hash)
    if found is None:
        reason = "the event before it was removed (or rewritten): its prev_hash matches nothing"
        return walk.fail(row.id, reason)
    if found[0] > row.position:
        return walk.fail(row.id, "reordered: the event it follows in the chain comes after it")
    intruder = await store.event_id_at(session, found[0] + 1)
    return walk.fail(intruder, "inserted: this event is not part of the chain")


def _content_problem(walk: Walk, row: SealedRow) -> ChainReport | None:
    if row.seq is None:
        return walk.fail(None, f"removed: the event sealed at {row.position} is gone")
    if not sealed_as_stored(row) or chain_hash(row.prev_hash, row.canonical) != row.hash:
        return walk.fail(row.id, "edited: its content no longer matches its hash")
    if (row.xid, row.seq) <= (walk.head.xid, walk.head.seq):
        return walk.fail(row.id, "reordered: sealed out of chain order")
    if walk.marks.get(row.position, row.hash) != row.hash:
        return walk.fail(row.id, "rewritten: a signed checkpoint names another hash here")
    return None


def _expectation_problem_at(walk: Walk, row: SealedRow) -> ChainReport | None:
    if walk.expect is None or row.seq != walk.expect.seq:
        return None
    walk.expect_seen = True
    if row.hash != walk.expect.hash:
        return walk.fail(row.id, "rewritten: the expected checkpoint names another hash")
    return None


def _in_place_run(walk: Walk, records: list[Record], start: int) -> int:
    """Where the common case ends: the index of the first row from ``start`` that is not
    plainly in place, the head moved past the rows before it.

    A row is plainly in place when, in a few comparisons, it follows the head, in chain
    order, its hash is right, its event is there and unchanged, and no checkpoint or
    expectation names it. Together these imply that every full check passes; a row that
    fails any of them gets the full checks, which also say what is wrong. The head is kept
    in locals and stored once: a ChainHead per row cost more than the comparisons.
    ``records`` are in SealedRow's order."""
    position, digest, xid, seq = walk.head
    marks = walk.marks
    expected_seq = walk.expect.seq if walk.expect is not None else None
    index = start
    for values in islice(records, start, None):
        next_position, prev_hash, next_digest, canonical, next_seq, next_xid = values[:6]
        if not (
            next_position == position + 1
            and prev_hash == digest
            and next_seq is not None
            and (next_xid, next_seq) > (xid, seq)
            and next_position not in marks
            and next_seq != expected_seq
            and matches_at_a_glance(values)
            # Here, not in the read: SHA-256 cost the database about 2 µs a row against
            # under 1 µs in Python, and the database's side of the walk is the heavier.
            and sha256(prev_hash + canonical).digest() == next_digest
        ):
            break
        position, digest, xid, seq = next_position, next_digest, next_xid, next_seq
        index += 1
    walk.head = store.ChainHead(position, digest, xid, seq)
    walk.checked += index - start
    return index


async def _check_batch(
    session: AsyncSession, walk: Walk, records: list[Record], upcoming: Awaitable[object]
) -> ChainReport | None:
    index = _in_place_run(walk, records, 0)
    while index < len(records):
        row = SealedRow._make(records[index])
        if row.prev_hash != walk.head.hash or row.position != walk.head.position + 1:
            await upcoming  # the lookups below need the connection the next batch is using
            if not await _pruned_meanwhile(session, walk, row):
                return await _broken_link(session, walk, row)
        problem = _content_problem(walk, row) or _expectation_problem_at(walk, row)
        if problem is not None:
            return problem
        # A row that passed has its event, so seq and xid are set.
        walk.head = store.ChainHead(row.position, row.hash, row.xid or 0, row.seq or 0)
        walk.checked += 1
        index = _in_place_run(walk, records, index + 1)
    return None


async def walk_seals(session: AsyncSession, walk: Walk, batch_size: int) -> ChainReport | None:
    """The checks run in Python while the database reads the next batch."""
    records = await store.sealed_batch(session, walk.head.position, batch_size)
    while records:
        after = records[-1][0]  # the last one's position
        upcoming = asyncio.ensure_future(store.sealed_batch(session, after, batch_size))
        for _ in range(3):  # a few turns of the loop send the query before the CPU-bound checks
            await asyncio.sleep(0)
        try:
            problem = await _check_batch(session, walk, records, upcoming)
        finally:
            following = await upcoming
        if problem is not None:
            return problem
        records = following
    return None
