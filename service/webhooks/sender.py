"""The webhook sender: a loop of its own beside the background jobs, because a webhook should
arrive within a second or two of the change it reports, and the jobs tick every few seconds.

A committed event wakes it through Postgres NOTIFY on every replica; between wake-ups it
sleeps until the earliest retry is due, so an idle service does not touch the database for
it. Without a listening connection it polls every ``POLL_SECONDS``. Replicas share the work
through row leases, so a delivery is sent by one of them at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import asyncpg
import httpx
from asyncpg.pool import PoolConnectionProxy

from service.state import AppContext
from service.webhooks.delivery import deliver_due, seconds_until_next_due
from service.webhooks.outbox import CHANNEL

log = logging.getLogger("tsprov.webhooks")
POLL_SECONDS = 1.0
# A safety net while listening: a NOTIFY lost with a dropped connection is late, not lost.
IDLE_SECONDS = 30.0
MIN_PAUSE = 0.1
ERROR_PAUSE = 5.0


class WebhookSender:
    def __init__(self, context: AppContext) -> None:
        self._context = context
        self._wake = asyncio.Event()
        self._connection: asyncpg.Connection[Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self._listen_again_at = 0.0
        settings = context.settings
        timeout = httpx.Timeout(settings.webhook_timeout_seconds, connect=3.0)
        # Redirects are never followed: a 3xx is a failed attempt, not a new destination.
        self._http = httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="tsprov-webhooks")

    async def _listen(self) -> None:
        dsn = self._context.settings.database_url.replace(
            "postgresql+asyncpg://", "postgresql://", 1
        )
        try:
            self._connection = await asyncpg.connect(dsn, timeout=5)
            await self._connection.add_listener(CHANNEL, self._on_notify)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            # Still delivered without it, only up to POLL_SECONDS later.
            log.warning("could not listen for webhook events; the sender polls instead")
            self._connection = None

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._connection is not None:
            with contextlib.suppress(OSError, asyncpg.PostgresError, TimeoutError):
                await self._connection.close(timeout=2)
        await self._http.aclose()

    def _on_notify(
        self,
        _conn: asyncpg.Connection[Any] | PoolConnectionProxy[Any],
        _pid: int,
        _channel: str,
        _payload: object,
    ) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while True:
            if not self._listening() and time.monotonic() >= self._listen_again_at:
                self._listen_again_at = time.monotonic() + IDLE_SECONDS
                await self._listen()
            self._wake.clear()
            pause = ERROR_PAUSE
            try:
                pause = await self._send_due()
            except Exception as exc:  # a bad pass must not stop the sender
                log.warning("webhook delivery pass failed: %s", type(exc).__name__)
            if pause:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=pause)

    async def _send_due(self) -> float:
        """Send what is due; how long to wait before the next pass."""
        if self._context.key_ring is None:
            return IDLE_SECONDS  # nothing can be signed (nor registered) without it
        if await deliver_due(self._context, self._http):
            return 0.0  # more may be due at once
        # At least MIN_PAUSE: a delivery due but not taken is another replica's for a moment.
        return max(MIN_PAUSE, self._pause(await seconds_until_next_due(self._context)))

    def _listening(self) -> bool:
        return self._connection is not None and not self._connection.is_closed()

    def _pause(self, due_in: float | None) -> float:
        """Until the next retry is due; a new event wakes the sender sooner."""
        if not self._listening():
            return POLL_SECONDS if due_in is None else min(POLL_SECONDS, due_in)
        return IDLE_SECONDS if due_in is None else min(IDLE_SECONDS, due_in)
