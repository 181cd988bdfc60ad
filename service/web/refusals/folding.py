"""Refusals in the audit trail: a source's first in a minute at once, the rest as one count."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.audit.events import Actor, format_time, record_refused_attempt
from service.web.refusals.buckets import MAX_TRACKED, Clock

log = logging.getLogger("tsprov.refusals")
FOLD_WINDOW_SECONDS = 60.0
FLUSH_EVERY_SECONDS = 10.0


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


class RefusalFolds:
    """Each source's minute of refusals; the writes share ``lane`` with unproven lookups."""

    def __init__(self, clock: Clock, lane: asyncio.Semaphore) -> None:
        self._clock, self._lane = clock, lane
        self._windows: dict[str, _Window] = {}
        self._flusher: asyncio.Task[None] | None = None

    async def record(
        self, sessions: async_sessionmaker[AsyncSession], source: str, refusal: Refusal
    ) -> None:
        now = self._clock()
        if source not in self._windows and len(self._windows) >= MAX_TRACKED:
            source = "*"
        window = self._windows.get(source)
        if window is not None and now - window.opened < FOLD_WINDOW_SECONDS:
            window.folded += 1
            window.last = refusal
            return
        self._windows[source] = _Window(opened=now, since=datetime.now(UTC))
        async with self._lane:
            if window is not None:
                await _write_folded(sessions, source, window)
            await _write(sessions, source, refusal)

    async def flush(
        self, sessions: async_sessionmaker[AsyncSession], *, everything: bool = False
    ) -> None:
        """Write the folded count of every window that has closed (or of all, at shutdown)."""
        now = self._clock()
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
