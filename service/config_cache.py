"""What a process keeps in memory of tables that announce their changes.

Callers and webhook endpoints change rarely and are read on every request. A trigger on each
table sends a notice when a change commits (migration 0012); the listening connection turns
notices, and its own losses and returns, into a generation number
(``RequestNotifier.config_generation``). A kept value is used only while the generation is
the one it was read under:

- a value read before a change committed and stored after its notice arrived is not stored:
  ``put`` takes the generation seen *before* the read, and the notice has moved it on;
- while the listening connection is down nothing is kept or used, as a notice could be
  missed;
- a connection cut without a word is noticed only by its heartbeat, so each value also has a
  short life of its own, which bounds how long a missed notice can matter;
- a change this process commits itself is forgotten as it commits (``forget``), before its
  answer leaves: whoever made it reads their own write here, notice or not.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)
Value = TypeVar("Value")
Clock = Callable[[], float]
# A connection cut without a word is found only by the notifier's heartbeat (30 s): until then
# each value is still read again this often.
KEEP_SECONDS = 5.0


class ConfigCache(Generic[Key, Value]):
    """At most ``size`` values, each kept ``keep_seconds`` and while the generation holds."""

    def __init__(
        self,
        generation: Callable[[], int | None],
        *,
        size: int = 1024,
        keep_seconds: float = KEEP_SECONDS,
        clock: Clock = time.monotonic,
    ) -> None:
        self._generation, self._clock = generation, clock
        self._size, self._keep = size, keep_seconds
        self._kept_under: tuple[int, int] | None = None
        self._forgotten = 0  # changes made here: each moves the generation too
        self._values: OrderedDict[Key, tuple[Value, float]] = OrderedDict()

    def get(self, key: Key) -> Value | None:
        """The kept value, or None: never kept, expired, or possibly changed since."""
        if not self._current():
            return None
        kept = self._values.get(key)
        if kept is None:
            return None
        value, until = kept
        if until <= self._clock():
            del self._values[key]
            return None
        return value

    def generation(self) -> tuple[int, int] | None:
        """Take this before reading the database; hand it to ``put`` with what was read."""
        announced = self._generation()
        return None if announced is None else (announced, self._forgotten)

    def forget(self) -> None:
        """Drop everything now: this process has just committed a change to the table."""
        self._forgotten += 1
        self._values.clear()

    def put(self, key: Key, value: Value, read_under: tuple[int, int] | None) -> None:
        """Keep ``value`` unless its table may have changed since it was read."""
        if read_under is None or read_under != self.generation() or not self._current():
            return
        self._values[key] = (value, self._clock() + self._keep)
        self._values.move_to_end(key)
        if len(self._values) > self._size:
            self._values.popitem(last=False)

    def _current(self) -> bool:
        """Forget everything once the generation moves; False when nothing may be kept."""
        generation = self.generation()
        if generation != self._kept_under:
            self._values.clear()
            self._kept_under = generation
        return generation is not None
