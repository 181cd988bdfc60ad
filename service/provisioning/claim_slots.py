"""How many claims one process works on at once: a burst queues here, not in the pool.

A claim runs three short transactions with an upstream call between them. When a burst of
claims (a refresh storm: every user's token due at once) all start together, the event loop
is shared by all of them, so each transaction waits for its next turn of the loop while
holding its pooled connection. Transactions then last as long as the burst is large, the
pool's queue grows with them, and claims wait past ``DB_POOL_TIMEOUT_SECONDS`` and fail with
503 although the database is idle, some after their key was already minted.

Admitting at most as many claims as the pool has connections keeps every admitted claim's
transactions short: claims alone can no longer fill the pool's queue (creates, long-polls
and the background jobs share the pool, so a claim may still wait its turn behind them),
and the loop is not crowded. The others wait here, holding nothing, in arrival order, for
up to twice the upstream deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from service.web.errors import ServiceUnavailable


class ClaimSlots:
    def __init__(self, slots: int, patience_seconds: float) -> None:
        self._slots = asyncio.Semaphore(slots)
        self._patience = patience_seconds

    @asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """One claim's turn; a 503 with Retry-After when none frees up within the patience."""
        try:
            async with asyncio.timeout(self._patience):
                await self._slots.acquire()
        except TimeoutError:
            raise ServiceUnavailable(
                "Too many claims are under way in this replica; retry.",
                headers={"Retry-After": "1"},
            ) from None
        try:
            yield
        finally:
            self._slots.release()
