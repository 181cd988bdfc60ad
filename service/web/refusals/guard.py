"""The throttle itself: what is refused before a lookup, what waits, and who is proven."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import Counter, OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.web.errors import RateLimited
from service.web.refusals.buckets import (
    KEY_PREFIX_LENGTH,
    MAX_TRACKED,
    Clock,
    TokenBuckets,
    UnprovenInFlight,
    bucket_names,
)
from service.web.refusals.folding import Refusal, RefusalFolds

THROTTLED_KEY = "key not checked: too many refusals"
# Connections that lookups of unproven keys and refusal writes may hold at once: a few of the
# pool's (ten by default), so a burst of bad keys leaves the rest to working callers.
UNPROVEN_LANE_WIDTH = 2
# How long a request whose tokens are only held for unproven requests ahead of it may wait for
# those to settle; a lookup takes milliseconds, so only a stalled database makes it run out.
SETTLE_PATIENCE_SECONDS = 1.0


@dataclass
class RefusalGuard:
    """Throttles and folds refusals of anonymous requests for one process."""

    burst: int = 20
    per_second: float = 2.0
    clock: Clock = time.monotonic
    buckets: TokenBuckets = field(init=False)
    _known_prefixes: OrderedDict[str, None] = field(init=False, default_factory=OrderedDict)
    # Requests with unproven keys let past the early check and still running, per bucket: in
    # a burst they are all in flight before the first refusal takes a token, so the early
    # check counts them as spent.
    _in_flight: Counter[str] = field(init=False, default_factory=Counter)
    _unproven_lane: asyncio.Semaphore = field(
        init=False, default_factory=lambda: asyncio.Semaphore(UNPROVEN_LANE_WIDTH)
    )
    # Set, and replaced, each time an unproven request settles (see lookups_ahead_settle).
    _settling: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    _folds: RefusalFolds = field(init=False)

    def __post_init__(self) -> None:
        self.buckets = TokenBuckets(self.burst, self.per_second, self.clock)
        self._folds = RefusalFolds(self.clock, self._unproven_lane)

    def throttled_before_lookup(
        self, source: str, key: str, *, counting_in_flight: bool = False
    ) -> bool:
        """Whether to refuse without looking the key up: its source or prefix is flooding."""
        if self._proven(key):
            return False
        return any(self._wait(name, counting_in_flight) > 0 for name in bucket_names(source, key))

    @contextlib.contextmanager
    def let_through(self, source: str, key: str) -> Iterator[UnprovenInFlight]:
        """Counts an unproven request against its buckets until it ends or its key proves
        good (``UnprovenInFlight.release``): a long-poll with a working key holds nothing.

        A refused one has taken its token before it ends, and for that moment counts twice:
        a burst arriving at once may get a lookup or two fewer than ``burst``, never more.
        """
        names = [] if self._proven(key) else bucket_names(source, key)
        counted = UnprovenInFlight(self._in_flight, names, self._settled)
        try:
            yield counted
        finally:
            counted.release()

    async def lookups_ahead_settle(self, source: str, key: str) -> bool:
        """Whether a request held back only by unproven requests still in flight may go on
        once they settle; False at once when a bucket is truly empty.

        A good caller's first burst at a process looks like a flood until its first lookup
        proves the key: without this wait, the requests past the burst were refused with
        429 although nothing had been refused. Each settling request either proves its key,
        and its prefix with it, or takes its token as a refusal; so the wait ends with the
        decision the early check would make had the requests ahead been answered already.
        """
        deadline = asyncio.get_running_loop().time() + SETTLE_PATIENCE_SECONDS
        while not self.throttled_before_lookup(source, key):  # the tokens are there, held
            if not self.throttled_before_lookup(source, key, counting_in_flight=True):
                return True
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._settling.wait(), remaining)
        return False

    def _settled(self) -> None:
        settled, self._settling = self._settling, asyncio.Event()
        settled.set()

    def lookup_lane(self, key: str) -> contextlib.AbstractAsyncContextManager[object]:
        """Where the lookup of ``key`` waits for its turn: a key whose prefix has worked here
        goes straight to the pool; any other shares the narrow lane with refusal writes."""
        return contextlib.nullcontext() if self._proven(key) else self._unproven_lane

    def _proven(self, key: str) -> bool:
        return bool(key) and key[:KEY_PREFIX_LENGTH] in self._known_prefixes

    def _wait(self, name: str, counting_in_flight: bool) -> float:
        return self.buckets.wait_for(name, self._in_flight[name] if counting_in_flight else 0)

    def authenticated(self, key: str) -> None:
        """Remember a key prefix that belongs to a caller (bounded; least recent forgotten)."""
        self._known_prefixes[key[:KEY_PREFIX_LENGTH]] = None
        self._known_prefixes.move_to_end(key[:KEY_PREFIX_LENGTH])
        if len(self._known_prefixes) > MAX_TRACKED:
            self._known_prefixes.popitem(last=False)

    async def refused(
        self,
        sessions: async_sessionmaker[AsyncSession],
        source: str,
        key: str,
        refusal: Refusal,
        *,
        counting_in_flight: bool = False,
    ) -> None:
        """Audit (or fold) a refusal; raise 429 once the source or key prefix is out of tokens."""
        names = bucket_names(source, key)
        wait = max(self._wait(name, counting_in_flight) for name in names)
        for name in names:
            # Tokens held for requests in flight stay theirs: an early refusal drains only
            # the buckets that are empty already.
            if not counting_in_flight or self.buckets.wait_for(name) > 0:
                self.buckets.take(name)
        await self._folds.record(sessions, source, refusal)
        if wait > 0:
            raise _rate_limited(wait)

    async def flush(
        self, sessions: async_sessionmaker[AsyncSession], *, everything: bool = False
    ) -> None:
        """Write the folded count of every window that has closed (or of all, at shutdown)."""
        await self._folds.flush(sessions, everything=everything)

    def start(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._folds.start(sessions)

    async def stop(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        await self._folds.stop(sessions)


def bearer_key(authorization: str) -> str:
    """The key of an ``Authorization: Bearer`` header; empty for any other header."""
    scheme, _, key = authorization.partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


def _rate_limited(wait: float) -> RateLimited:
    return RateLimited(
        "Too many refused requests; retry later.",
        headers={"Retry-After": str(max(1, math.ceil(wait)))},
    )
