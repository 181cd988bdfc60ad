"""Reading the audit trail as Tailscale's ``/logging/configuration`` does, page by page.

Events come in time order: keyset pagination over ``(event_time, seq)``, which the
``ix_audit_event_time`` index serves directly, so a page costs the same at any depth and
no window is ever held in memory.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import rfc8785
from sqlalchemy import ColumnElement, or_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.audit import store
from service.audit.events import event_json
from service.models import AuditEvent
from service.web.errors import ValidationFailed

LOG_VERSION = "1.1"
EXPORT_BATCH = 1000
# RFC 3339 date-time: a full date, a 'T' (or space), a time and an explicit offset.
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR = struct.Struct(">qq8s")


@dataclass(frozen=True)
class AuditFilter:
    """A time window ``[start, end)`` and the Tailscale-style filters; empty lists match all."""

    start: datetime
    end: datetime
    actors: Sequence[str] = field(default_factory=tuple)
    targets: Sequence[str] = field(default_factory=tuple)
    events: Sequence[str] = field(default_factory=tuple)
    user_id: str | None = None

    def fingerprint(self) -> bytes:
        """What a cursor is bound to, so it cannot be replayed against another query."""
        described: dict[str, Any] = {
            "start": _micros(self.start),
            "end": _micros(self.end),
            "actors": sorted(set(self.actors)),
            "targets": sorted(set(self.targets)),
            "events": sorted(set(self.events)),
            "user_id": self.user_id,
        }
        return hashlib.sha256(rfc8785.dumps(described)).digest()


@dataclass(frozen=True)
class AuditPage:
    logs: list[dict[str, Any]]
    next_cursor: str | None


@dataclass(frozen=True)
class Position:
    """The last event a page ended on: the keyset to continue after."""

    event_time: datetime
    seq: int


def parse_time(name: str, value: str) -> datetime:
    """A strict RFC 3339 timestamp; anything looser (dates, epoch numbers, no offset) is 422."""
    if not RFC3339.match(value):
        raise ValidationFailed(f"{name} must be an RFC 3339 timestamp with an offset")
    try:
        # Python keeps microseconds, as Postgres does; finer digits are dropped, not rounded.
        cleaned = re.sub(r"(\.\d{6})\d+", r"\1", value.upper().replace(" ", "T"))
        parsed = datetime.fromisoformat(cleaned)
    except ValueError as exc:
        raise ValidationFailed(f"{name} is not a valid date and time") from exc
    try:
        # The driver sends UTC: a local time whose UTC value leaves years 1-9999 (Python's
        # range, inside Postgres') would fail there, looking like a database outage.
        return parsed.astimezone(UTC)
    except OverflowError as exc:
        raise ValidationFailed(f"{name} is outside the years 0001 to 9999 in UTC") from exc


def build_filter(
    start: str,
    end: str,
    *,
    actors: Sequence[str] = (),
    targets: Sequence[str] = (),
    events: Sequence[str] = (),
    user_id: str | None = None,
) -> AuditFilter:
    """Validate raw query parameters into a filter (422 ``validation_failed`` otherwise)."""
    start_at, end_at = parse_time("start", start), parse_time("end", end)
    if start_at > end_at:
        raise ValidationFailed("start must not be after end")
    return AuditFilter(start_at, end_at, tuple(actors), tuple(targets), tuple(events), user_id)


def encode_cursor(audit_filter: AuditFilter, position: Position) -> str:
    packed = struct.pack(">qq", _micros(position.event_time), position.seq)
    check = hashlib.sha256(audit_filter.fingerprint() + packed).digest()[:8]
    return base64.urlsafe_b64encode(packed + check).rstrip(b"=").decode()


def decode_cursor(audit_filter: AuditFilter, cursor: str) -> Position:
    """The position a cursor names; 422 when it was altered or issued for another query.

    The check is a digest, not a MAC: a cursor grants nothing the caller's scope does not,
    so it only has to catch corruption and cursors reused across different queries.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        micros, seq, check = _CURSOR.unpack(raw)
    except (binascii.Error, ValueError, struct.error) as exc:
        raise ValidationFailed("cursor is malformed") from exc
    expected = hashlib.sha256(audit_filter.fingerprint() + raw[:16]).digest()[:8]
    if check != expected:
        raise ValidationFailed("cursor does not belong to this query")
    try:
        return Position(EPOCH + timedelta(microseconds=micros), seq)
    except OverflowError as exc:
        raise ValidationFailed("cursor is malformed") from exc


def _micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def _conditions(audit_filter: AuditFilter) -> list[ColumnElement[bool]]:
    """OR within one kind of filter, AND across kinds, as Tailscale combines them."""
    conditions = [
        AuditEvent.event_time >= audit_filter.start,
        AuditEvent.event_time < audit_filter.end,
    ]
    if audit_filter.actors:
        conditions.append(_either(AuditEvent.actor, "id", "loginName", audit_filter.actors))
    if audit_filter.targets:
        conditions.append(_either(AuditEvent.target, "id", "name", audit_filter.targets))
    if audit_filter.events:
        conditions.append(AuditEvent.event_name.in_(audit_filter.events))
    if audit_filter.user_id is not None:
        conditions.append(AuditEvent.user_id == audit_filter.user_id)
    return conditions


def _either(column: Any, first: str, second: str, values: Sequence[str]) -> ColumnElement[bool]:
    return or_(column[first].astext.in_(values), column[second].astext.in_(values))


@dataclass(frozen=True)
class ReadEvent:
    """An event as read for a page: its upstream link and its seal, when it has them."""

    event: AuditEvent
    upstream_group: str | None
    seal: tuple[bytes, bytes] | None


def linked_json(read: ReadEvent) -> dict[str, Any]:
    """The event as readers see it; the upstream link is outside the hashed content."""
    body = event_json(read.event, read.seal)
    upstream_group = read.upstream_group
    if upstream_group is not None:
        body["upstreamEventGroupID"] = upstream_group
    return body


def _read(rows: list[store.ReadEventRow]) -> list[ReadEvent]:
    # Sealed and not-yet-sealed events alike; a pending one has no chain fields yet.
    return [
        ReadEvent(event, group, (prev, digest) if prev is not None and digest is not None else None)
        for event, group, prev, digest in rows
    ]


async def events_about(
    session: AsyncSession,
    user_id: str,
    target_ids: Sequence[str],
    window: tuple[datetime, datetime],
    *,
    limit: int,
) -> list[dict[str, Any]]:
    """Events naming any of these targets in one user's trail, in time order, as readers
    see them (each with Tailscale's ``upstreamEventGroupID`` once linked)."""
    rows = await store.events_about(session, user_id, target_ids, window, limit)
    return [linked_json(read) for read in _read(rows)]


async def _fetch(
    session: AsyncSession, audit_filter: AuditFilter, after: Position | None, limit: int
) -> list[ReadEvent]:
    position = (after.event_time, after.seq) if after is not None else None
    rows = _read(await store.events_page(session, _conditions(audit_filter), position, limit))
    # Pages are read-only; dropping the identity map keeps a long export at constant memory.
    session.expunge_all()
    return rows


async def query_audit(
    session: AsyncSession, audit_filter: AuditFilter, *, limit: int, cursor: str | None = None
) -> AuditPage:
    """One page of events in time order, and the cursor for the next when there is more."""
    after = decode_cursor(audit_filter, cursor) if cursor else None
    rows = await _fetch(session, audit_filter, after, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more:
        last = rows[-1].event
        next_cursor = encode_cursor(audit_filter, Position(last.event_time, last.seq))
    return AuditPage([linked_json(read) for read in rows], next_cursor)


async def _read_batch(
    sessions: async_sessionmaker[AsyncSession],
    audit_filter: AuditFilter,
    after: Position | None,
    batch_size: int,
) -> list[ReadEvent]:
    async with sessions() as session:
        return await _fetch(session, audit_filter, after, batch_size)


async def open_export(
    sessions: async_sessionmaker[AsyncSession],
    audit_filter: AuditFilter,
    *,
    batch_size: int = EXPORT_BATCH,
) -> AsyncIterator[dict[str, Any]]:
    """Read the first batch now and stream every matching event from it, in time order.

    A failure before the answer starts can still be an error status; a later one can only
    break the stream, which the reader must then mark as incomplete. No connection or
    snapshot is held while a slow reader drains a batch, and the log is append-only, so
    batches read in separate short transactions still form one ordered stream.
    """
    first = await _read_batch(sessions, audit_filter, None, batch_size)
    return _stream_from(sessions, audit_filter, first, batch_size)


async def _stream_from(
    sessions: async_sessionmaker[AsyncSession],
    audit_filter: AuditFilter,
    rows: list[ReadEvent],
    batch_size: int,
) -> AsyncIterator[dict[str, Any]]:
    while True:
        for read in rows:
            yield linked_json(read)
        if len(rows) < batch_size:
            return
        last = rows[-1].event
        after = Position(last.event_time, last.seq)
        rows = await _read_batch(sessions, audit_filter, after, batch_size)


async def stream_audit(
    sessions: async_sessionmaker[AsyncSession],
    audit_filter: AuditFilter,
    *,
    batch_size: int = EXPORT_BATCH,
) -> AsyncIterator[dict[str, Any]]:
    """Every matching event in time order, one short transaction per batch."""
    async for event in await open_export(sessions, audit_filter, batch_size=batch_size):
        yield event
