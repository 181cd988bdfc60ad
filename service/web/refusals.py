"""Refused requests made cheap: throttled per source and key prefix, folded in the audit trail.

Each refusal takes a token from its source address's bucket and its key prefix's bucket;
once either is empty the answer is 429 with ``Retry-After``, given before routing and the
key lookup, so a flood costs no query. Requests with unproven keys still on their way count
as spent tokens, so a burst arriving at once sends no more than the burst to a lookup, and
the rest wait for those to settle (a good caller's burst then goes through). Those lookups,
and a source's first refusal write, share a lane two connections wide, leaving the pool to
callers. A key whose prefix has authenticated here skips all of it, so a good caller
behind a flood's address (a shared NAT) keeps working. In the trail, the first refusal from
a source in a minute is written at once, the rest of that minute as one event with a count.

The buckets and the folding live in this process: with several replicas each enforces its
own limits, so the service-wide rate is at most the configured one times the replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.audit.events import (
    Actor,
    format_time,
    record_refused_attempt,
)
from service.web.errors import RateLimited

log = logging.getLogger("tsprov.refusals")
FOLD_WINDOW_SECONDS = 60.0
FLUSH_EVERY_SECONDS = 10.0
# Bounds memory under a flood from many addresses; past it the least recent are forgotten
# (buckets) or counted together (folding, under the source "*").
MAX_TRACKED = 10_000
THROTTLED_KEY = "key not checked: too many refusals"
KEY_PREFIX_LENGTH = 12  # "tsprov_" and five characters: tells keys apart, reveals little
# Connections that lookups of unproven keys and refusal writes may hold at once: a few of the
# pool's (ten by default), so a burst of bad keys leaves the rest to working callers.
UNPROVEN_LANE_WIDTH = 2
# How long a request whose tokens are only held for unproven requests ahead of it may wait for
# those to settle; a lookup takes milliseconds, so only a stalled database makes it run out.
SETTLE_PATIENCE_SECONDS = 1.0
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


@dataclass
class Refusal:
    """One refused request, as the audit trail records it."""

    actor: Actor
    method: str
    path: str
    error: str
    origin: str


@dataclass
class _Window:
    opened: float
    since: datetime
    folded: int = 0
    last: Refusal | None = None


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


@dataclass
class RefusalGuard:
    """Throttles and folds refusals of anonymous requests for one process."""

    burst: int = 20
    per_second: float = 2.0
    clock: Clock = time.monotonic
    buckets: TokenBuckets = field(init=False)
    _windows: dict[str, _Window] = field(init=False, default_factory=dict)
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
    _flusher: asyncio.Task[None] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.buckets = TokenBuckets(self.burst, self.per_second, self.clock)

    def throttled_before_lookup(
        self, source: str, key: str, *, counting_in_flight: bool = False
    ) -> bool:
        """Whether to refuse without looking the key up: its source or prefix is flooding."""
        if self._proven(key):
            return False
        return any(self._wait(name, counting_in_flight) > 0 for name in _names(source, key))

    @contextlib.contextmanager
    def let_through(self, source: str, key: str) -> Iterator[UnprovenInFlight]:
        """Counts an unproven request against its buckets until it ends or its key proves
        good (``UnprovenInFlight.release``): a long-poll with a working key holds nothing.

        A refused one has taken its token before it ends, and for that moment counts twice:
        a burst arriving at once may get a lookup or two fewer than ``burst``, never more.
        """
        names = [] if self._proven(key) else _names(source, key)
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
        names = _names(source, key)
        wait = max(self._wait(name, counting_in_flight) for name in names)
        for name in names:
            # Tokens held for requests in flight stay theirs: an early refusal drains only
            # the buckets that are empty already.
            if not counting_in_flight or self.buckets.wait_for(name) > 0:
                self.buckets.take(name)
        await self._audit(sessions, source, refusal)
        if wait > 0:
            raise _rate_limited(wait)

    async def _audit(
        self, sessions: async_sessionmaker[AsyncSession], source: str, refusal: Refusal
    ) -> None:
        now = self.clock()
        if source not in self._windows and len(self._windows) >= MAX_TRACKED:
            source = "*"
        window = self._windows.get(source)
        if window is not None and now - window.opened < FOLD_WINDOW_SECONDS:
            window.folded += 1
            window.last = refusal
            return
        self._windows[source] = _Window(opened=now, since=datetime.now(UTC))
        async with self._unproven_lane:
            if window is not None:
                await _write_folded(sessions, source, window)
            await _write(sessions, source, refusal)

    async def flush(
        self, sessions: async_sessionmaker[AsyncSession], *, everything: bool = False
    ) -> None:
        """Write the folded count of every window that has closed (or of all, at shutdown)."""
        now = self.clock()
        for source, window in list(self._windows.items()):
            if everything or now - window.opened >= FOLD_WINDOW_SECONDS:
                del self._windows[source]
                await _write_folded(sessions, source, window)

    def start(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._flusher = asyncio.create_task(self._flush_regularly(sessions), name="tsprov-folds")

    async def stop(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        with contextlib.suppress(Exception):  # a database gone at shutdown loses only counts
            await self.flush(sessions, everything=True)

    async def _flush_regularly(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY_SECONDS)
            try:
                await self.flush(sessions)
            except Exception as exc:  # the next round tries again; the counts are kept
                log.warning("writing folded refusals failed: %s", type(exc).__name__)


def bearer_key(authorization: str) -> str:
    """The key of an ``Authorization: Bearer`` header; empty for any other header."""
    scheme, _, key = authorization.partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


def _names(source: str, key: str) -> list[str]:
    """The buckets a refusal draws on: its source's, and its key prefix's when it has a key."""
    return [f"source:{source}", f"key:{key[:KEY_PREFIX_LENGTH]}"] if key else [f"source:{source}"]


def _rate_limited(wait: float) -> RateLimited:
    return RateLimited(
        "Too many refused requests; retry later.",
        headers={"Retry-After": str(max(1, math.ceil(wait)))},
    )


async def _write(
    sessions: async_sessionmaker[AsyncSession],
    source: str,
    refusal: Refusal,
    *,
    folded: _Window | None = None,
) -> None:
    details, new = f"from {source}", None
    if folded is not None:
        details = f"{folded.folded} more refusals from {source} since {format_time(folded.since)}"
        new = {"count": folded.folded, "source": source, "since": format_time(folded.since)}
    await record_refused_attempt(
        sessions,
        actor=refusal.actor,
        method=refusal.method,
        path=refusal.path,
        error=refusal.error,
        origin=refusal.origin,
        details=details,
        new=new,
    )


async def _write_folded(
    sessions: async_sessionmaker[AsyncSession], source: str, window: _Window
) -> None:
    if window.folded and window.last is not None:
        await _write(sessions, source, window.last, folded=window)
