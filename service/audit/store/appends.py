"""Appending to the audit trail: one statement per step, however many events it records."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    DateTime,
    Insert,
    Select,
    Table,
    Update,
    bindparam,
    exists,
    func,
    insert,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.store.chain import CONTENT_COLUMNS
from service.models import AuditEvent

_EVENTS = cast(Table, AuditEvent.__table__)  # typed as any FromClause; it is the table
# Every column an insert sends; the time is chosen in the statement, ``seq`` and ``xid`` by
# the database.
_SENT_COLUMNS = (*(name for name in CONTENT_COLUMNS if name != "event_time"), "request_id")
# Only what the database decides: the rest is what was sent. Reading every column back
# decoded and parsed all of them again (four are JSON) for a result no caller uses.
_DECIDED = (_EVENTS.c.seq, _EVENTS.c.xid, _EVENTS.c.event_time)


def _newest_or(now: BindParameter[datetime]) -> ColumnElement[datetime]:
    # Never behind the newest committed event: replicas' clocks differ.
    return func.greatest(now, select(func.max(_EVENTS.c.event_time)).scalar_subquery())


# A Core insert of the table, not of the entity: the ORM's insert-with-RETURNING machinery
# cost twice the CPU of the statement itself, three times a provisioning pair.
_INSERT_EVENT = (
    insert(_EVENTS)
    .values(
        {
            **{name: bindparam(name) for name in _SENT_COLUMNS},
            **{name: bindparam(name, type_=JSONB) for name in ("actor", "target", "old", "new")},
            "event_time": _newest_or(bindparam("now", type_=DateTime(timezone=True))),
        }
    )
    .returning(_EVENTS.c.id, *_DECIDED)
)


def _event_row(row: int) -> Select[Any]:
    """One event's row of a several-event insert: its parameters are ``<column>_<row>``."""
    sent = [
        bindparam(f"{name}_{row}", type_=_EVENTS.c[name].type).label(name) for name in _SENT_COLUMNS
    ]
    now = bindparam(f"now_{row}", type_=DateTime(timezone=True))
    return select(*sent, _newest_or(now).label("event_time"))


@functools.cache
def _insert_several(count: int) -> Insert:
    """One statement for ``count`` events, built once per count: a step that records two (a
    key and the status it moved to) sends one. INSERT … SELECT … UNION ALL, where a multi-row
    VALUES would be compiled again at every call (SQLAlchemy keeps no compiled form of one).
    A single event takes the plain insert above."""
    rows = union_all(*(_event_row(row) for row in range(count)))
    return (
        insert(_EVENTS)
        .from_select([*_SENT_COLUMNS, "event_time"], rows)
        .returning(_EVENTS.c.id, *_DECIDED)
    )


@dataclass(frozen=True)
class Along:
    """Another table's write sent in the events' statement, as a CTE: one round trip where
    there were two. Built once by that table's owner; no parameter may share a name with an
    event's (``<column>_<row>`` of ``_SENT_COLUMNS``, and ``now``).

    ``required``: the write may find nothing to change (an UPDATE whose WHERE checks the row
    is still the caller's), and the events record it only if it did. Its statement must then
    return a row for each row it wrote; with none, no event is written.
    """

    statement: Insert | Update
    parameters: dict[str, Any]
    required: bool = False


@functools.cache
def _with_along(events: Insert, along: Insert | Update) -> Insert:
    """``events`` with ``along`` before it in the same statement, built once per pair."""
    return events.add_cte(along.cte("along"))


@functools.cache
def _insert_several_if_written(count: int, along: Insert | Update) -> Insert:
    """``count`` events after ``along``, each written only if ``along`` returned a row.

    The data-modifying CTE runs once whatever reads it; its RETURNING rows are what the
    events' SELECTs see (not the table, whose new row versions a statement cannot see)."""
    written = along.cte("along")
    wrote = exists(select(written.c[0]))
    rows = union_all(*(_event_row(row).where(wrote) for row in range(count)))
    return (
        insert(_EVENTS)
        .from_select([*_SENT_COLUMNS, "event_time"], rows)
        .returning(_EVENTS.c.id, *_DECIDED)
        .add_cte(written)
    )


def _statement(count: int, along: Along | None) -> tuple[Insert, bool]:
    """The statement for ``count`` events and ``along``, and whether its events' parameters
    are numbered by row (``<column>_<row>``) or plain (the single event's insert)."""
    if along is not None and along.required:
        return _insert_several_if_written(count, along.statement), True
    events = _INSERT_EVENT if count == 1 else _insert_several(count)
    return (events if along is None else _with_along(events, along.statement)), count > 1


@dataclass(slots=True)
class RecordedEvent:
    """An event as inserted: what was sent and what the database chose.

    A plain record, not an ORM object: building one of those was about an eighth of an
    append's CPU, and an event is never changed once written. It has the columns' names, so
    whatever reads an event's fields (``event_json``) reads this too.
    """

    id: uuid.UUID
    seq: int
    xid: int
    event_time: datetime
    event_group_id: str
    origin: str
    actor: dict[str, Any]
    target: dict[str, Any]
    action: str
    event_name: str
    old: Any
    new: Any
    action_details: str
    error: str
    user_id: str | None
    request_id: str | None


async def insert_events(
    session: AsyncSession,
    now: datetime,
    events: Sequence[dict[str, Any]],
    along: Along | None = None,
) -> list[RecordedEvent]:
    """Events in one statement, given in order (``seq`` follows it), with ``along`` if
    given; each id is new and each time at least ``now``.

    They come back with the values given and those the database set: ``seq``, ``xid`` and
    the time. None come back when ``along`` is required and wrote nothing: none was written.
    """
    sent = [{"id": uuid.uuid4(), **values} for values in events]
    statement, numbered = _statement(len(sent), along)
    if not numbered:
        parameters = sent[0] | {"now": now}
    else:
        parameters = {
            f"{name}_{row}": value
            for row, values in enumerate(sent)
            for name, value in (values | {"now": now}).items()
        }
    if along is not None:
        parameters |= along.parameters
    rows = await session.execute(statement, parameters)
    decided = {row.id: row for row in rows}
    if not decided:  # a required ``along`` wrote nothing, so neither did the events
        return []
    return [
        RecordedEvent(
            seq=decided[values["id"]].seq,
            xid=decided[values["id"]].xid,
            event_time=decided[values["id"]].event_time,
            **values,
        )
        for values in sent
    ]
