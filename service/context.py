"""What the lifespan builds and every request shares."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from service.crypto import KeyRing
from service.errors import EncryptionUnavailable
from service.metrics import Metrics
from service.notify import RequestNotifier
from service.settings import Settings
from service.tailscale import TailscaleClient


class KeyedLocks:
    """One asyncio lock per key, forgotten once nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


@dataclass
class AppContext:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    key_ring: KeyRing | None
    tailscale: TailscaleClient
    notifier: RequestNotifier
    metrics: Metrics = field(default_factory=Metrics)
    # Per-process queue for refreshing one grant; see grants.access_token_for.
    refresh_locks: KeyedLocks = field(default_factory=KeyedLocks)
    draining: bool = field(default=False)

    def require_key_ring(self) -> KeyRing:
        """The key ring, or a 503: without it no secret can be sealed or opened."""
        if self.key_ring is None:
            raise EncryptionUnavailable("No encryption key is loaded; secrets cannot be handled.")
        return self.key_ring
