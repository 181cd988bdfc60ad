"""Caps on concurrent long-polls, per caller and per replica.

Each wait holds a connection and a task for up to 30 seconds; without a cap one caller (or
many) could hold them all. Counted in this process, so with several replicas each applies
its own caps.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from service.web.errors import TooManyWaits


class LongPollLimits:
    """Hands out wait slots: at most ``per_caller`` per caller and ``total`` in all."""

    def __init__(self, per_caller: int = 20, total: int = 500) -> None:
        self.per_caller, self.total = per_caller, total
        self._by_caller: Counter[uuid.UUID] = Counter()

    @property
    def waiting(self) -> int:
        return self._by_caller.total()

    @contextmanager
    def slot(self, caller_id: uuid.UUID) -> Iterator[None]:
        """Hold one wait slot for ``caller_id``, or answer 429 ``too_many_waits``."""
        if self._by_caller[caller_id] >= self.per_caller:
            raise _refused(f"This key already holds {self.per_caller} long-polls.")
        if self.waiting >= self.total:
            raise _refused("This replica holds as many long-polls as it takes.")
        self._by_caller[caller_id] += 1
        try:
            yield
        finally:
            self._by_caller[caller_id] -= 1
            if not self._by_caller[caller_id]:
                del self._by_caller[caller_id]


def _refused(detail: str) -> TooManyWaits:
    # Polling again without `wait_seconds` always works; a slot frees within 30 seconds.
    return TooManyWaits(
        detail + " Retry, or poll without wait_seconds.", headers={"Retry-After": "1"}
    )
