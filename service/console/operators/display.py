"""How values read on the console's pages: times in UTC to the second, absent ones as a dash."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from jinja2 import Environment

NOTHING = "—"


def utc(moment: datetime | None) -> str:
    if moment is None:
        return NOTHING
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def event_time(stamp: str) -> str:
    """An audit event's RFC 3339 time to the millisecond, date and time apart: the full
    stamp is one unbreakable word that would widen the table past the page."""
    return f"{stamp[:10]} {stamp[11:23]}" if len(stamp) > 19 and stamp[10] == "T" else stamp


def short_id(value: object) -> str:
    """The first 8 characters of an id: enough to tell rows apart at a glance."""
    text = str(value)
    return text[:8] + "…" if len(text) > 9 else text


def shown(value: object) -> str:
    """An audit event's old or new value: text as it is, anything else as compact JSON."""
    if value is None:
        return NOTHING
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(", ", ": "), ensure_ascii=False)


def add_filters(env: Environment) -> None:
    env.filters["utc"] = utc
    env.filters["short_id"] = short_id
    env.filters["event_time"] = event_time
    env.filters["shown"] = shown
