"""Token buckets per source and key prefix, and the count of unproven requests in flight."""

from __future__ import annotations

import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

# Bounds memory under a flood from many addresses; past it the least recent are forgotten
# (buckets) or counted together (folding, under the source "*").
MAX_TRACKED = 10_000
KEY_PREFIX_LENGTH = 12  # "tsprov_" and five characters: tells keys apart, reveals little
Clock = Callable[[], float]


class TokenBuckets:
    """One token bucket per name: ``burst`` tokens, refilled at ``per_second``."""

    def __init__(self, burst: int, per_second: float, clock: Clock = time.monotonic) -> None:
        self.burst, self.per_second, self._clock = burst, per_second, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _tokens(self, name: str, now: float) -> float:
        tokens, updated = self._buckets.get(name, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - updated) * self.per_second)

    def wait_for(self, name: str, reserved: int = 0) -> float:
        """Seconds until ``name`` has a token again (beyond ``reserved``); 0 when it has."""
        tokens = self._tokens(name, self._clock()) - reserved
        return 0.0 if tokens >= 1 else (1 - tokens) / self.per_second

    def take(self, name: str) -> None:
        now = self._clock()
        self._buckets[name] = (max(0.0, self._tokens(name, now) - 1), now)
        self._buckets.move_to_end(name)
        if len(self._buckets) > MAX_TRACKED:
            self._buckets.popitem(last=False)


def bucket_names(source: str, key: str) -> list[str]:
    """The buckets a refusal draws on: its source's, and its key prefix's when it has a key."""
    return [f"source:{source}", f"key:{key[:KEY_PREFIX_LENGTH]}"] if key else [f"source:{source}"]


@dataclass
class UnprovenInFlight:
    """One request's place in the in-flight counts, given back once."""

    counts: Counter[str]
    names: list[str]
    settled: Callable[[], None] = lambda: None

    def __post_init__(self) -> None:
        self.counts.update(self.names)

    def release(self) -> None:
        names, self.names = self.names, []
        self.counts.subtract(names)
        for name in names:
            if self.counts[name] <= 0:
                del self.counts[name]
        if names:
            self.settled()
