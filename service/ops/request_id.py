"""The request id: one per HTTP request, in its logs, its audit events and its upstream calls."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

HEADER = "X-Request-ID"
MAX_LENGTH = 128
# What proxies send (UUIDs, hex, AWS-style "Root=1-…"): nothing that could break a log line,
# a header or a query over the audit trail.
_SANE = re.compile(rf"[A-Za-z0-9._:+=@-]{{1,{MAX_LENGTH}}}")
# A client that puts a credential in the header must not have it logged and stored.
_SECRET_MARKERS = ("tsprov_", "tskey-")

_current: ContextVar[str | None] = ContextVar("tsprov_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request being served, or None outside one (background work)."""
    return _current.get()


def accept_or_generate(offered: str | None) -> str:
    """A proxy's id when it is sane, otherwise a fresh one."""
    if offered is not None and _SANE.fullmatch(offered):
        lowered = offered.lower()
        if not any(marker in lowered for marker in _SECRET_MARKERS):
            return offered
    return uuid.uuid4().hex


@contextmanager
def request_scope(request_id: str) -> Iterator[str]:
    """Everything run inside, logs and audit events included, carries ``request_id``."""
    token = _current.set(request_id)
    try:
        yield request_id
    finally:
        _current.reset(token)
