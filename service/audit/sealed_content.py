"""Whether an event's columns still say what was sealed: the content check of ``verify``.

Two ways to one answer. The quick way renders the columns with orjson (keys sorted, no
spaces) and compares the bytes with the sealed content. Equal bytes prove the sealed content
parses to exactly the columns' values, because orjson's output is a faithful JSON rendering of
them. The sealed content is RFC 8785, which orjson's rendering matches for everything tsprov
records (strings, integers, booleans, null, objects with ASCII keys), so the quick way
answers nearly every event, in about a third of the time parsing takes.

When the bytes differ (a float or a non-ASCII key that RFC 8785 writes differently, or a real
edit) the careful way decides: it parses the sealed content and compares it value by value
with the columns. Only the careful way ever says "no".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson
from asyncpg import Record

from service.audit.events import ZERO_TIME
from service.audit.store import SealedRow

# A seal with its event's columns in SealedRow's order: a plain record, or the named tuple.
SealedValues = Record | SealedRow

# The C scanner inside json.loads, without loads' whitespace handling (there is none here);
# typeshed does not declare the attribute. It parses integers exactly, as the careful way must
# (orjson turns integers beyond 64 bits into floats).
_parse: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _content(values: SealedValues, actor: Any, target: Any, old: Any, new: Any) -> dict[str, Any]:
    """The hashed content: ``events.content_of``'s fields, from the row's columns."""
    return {
        "id": values[6],
        "eventTime": values[7],
        "type": "CONFIG",
        "deferredAt": ZERO_TIME,
        "eventGroupID": values[8],
        "origin": values[9],
        "actor": actor,
        "target": target,
        "action": values[10],
        "eventName": values[11],
        "old": old,
        "new": new,
        "actionDetails": values[12],
        "error": values[13],
        "userId": values[14],
    }


def _json_columns(values: SealedValues) -> list[Any] | None:
    """``[actor, target, old, new]``, parsed exactly; None when the event is gone.

    PostgreSQL joined them from jsonb into one array, so the text is valid JSON.
    """
    if values[4] is None:  # no event joined the seal
        return None
    columns: list[Any] = _parse(values[15], 0)[0]
    return columns


def matches_at_a_glance(values: SealedValues) -> bool:
    """The quick way: True only when the sealed bytes are the columns' own rendering."""
    columns = _json_columns(values)
    if columns is None:
        return False
    try:
        rendered = orjson.dumps(_content(values, *columns), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits: the careful way compares it
        return False
    return bool(rendered == values[3])


def sealed_as_stored(row: SealedRow) -> bool:
    """The careful way: the same fields with the same values, whatever the bytes look like."""
    try:
        columns = _json_columns(row)
        sealed = _parse(row.canonical.decode(), 0)[0]
    except (StopIteration, ValueError, TypeError):  # a sealed content no longer JSON
        return False
    return columns is not None and bool(sealed == _content(row, *columns))
