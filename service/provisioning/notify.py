"""Cross-replica wake-ups for long-polls, through Postgres LISTEN/NOTIFY.

A change to a provisioning request sends ``NOTIFY`` inside its transaction, so the wake-up
is delivered only if, and when, the change commits, on every replica listening.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

CHANNEL = "tsprov_request_changed"
log = logging.getLogger("tsprov.notify")


async def notify_request_changed(session: AsyncSession, request_id: uuid.UUID) -> None:
    """Queue a wake-up for ``request_id``; Postgres sends it when the transaction commits."""
    await session.execute(
        text("SELECT pg_notify(:channel, :payload)"),
        {"channel": CHANNEL, "payload": str(request_id)},
    )


class RequestNotifier:
    """Holds one listening connection and wakes the long-polls waiting on a request."""

    def __init__(self, database_url: str) -> None:
        self._dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
        self._waiters: defaultdict[str, set[asyncio.Event]] = defaultdict(set)
        self._connection: asyncpg.Connection[Any] | None = None

    async def start(self) -> None:
        try:
            self._connection = await asyncpg.connect(self._dsn, timeout=5)
            await self._connection.add_listener(CHANNEL, self._on_notify)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            # Long-polls still work without it: they re-read on a short timer.
            log.warning("could not listen for request changes; long-polls fall back to polling")
            self._connection = None

    async def stop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(OSError, asyncpg.PostgresError, TimeoutError):
                await self._connection.close(timeout=2)
            self._connection = None

    def _on_notify(
        self,
        _conn: asyncpg.Connection[Any] | PoolConnectionProxy[Any],
        _pid: int,
        _channel: str,
        payload: object,
    ) -> None:
        for event in self._waiters.get(str(payload), ()):
            event.set()

    def wake_all(self) -> None:
        """Wake every long-poll, so each re-checks whether it should answer now."""
        for events in self._waiters.values():
            for event in events:
                event.set()

    @contextlib.contextmanager
    def watch(self, request_id: uuid.UUID) -> Iterator[asyncio.Event]:
        """An event set whenever ``request_id`` changes, on any replica."""
        key = str(request_id)
        event = asyncio.Event()
        self._waiters[key].add(event)
        try:
            yield event
        finally:
            self._waiters[key].discard(event)
            if not self._waiters[key]:
                del self._waiters[key]
