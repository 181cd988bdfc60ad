"""What the lifespan builds and every request shares."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from service.crypto.keyring import KeyRing
from service.ops.metrics import Metrics
from service.provisioning.notify import RequestNotifier
from service.settings import Settings
from service.tailscale.client import TailscaleClient
from service.web.errors import EncryptionUnavailable

T = TypeVar("T")


class SingleFlight:
    """Concurrent callers for one key share one run of the work, and its outcome."""

    def __init__(self) -> None:
        self._flights: dict[Hashable, asyncio.Future[Any]] = {}

    async def run(self, key: Hashable, work: Callable[[], Awaitable[T]]) -> T:
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.ensure_future(work())
            self._flights[key] = flight
            flight.add_done_callback(lambda done: self._land(key, done))
        # Shielded: a caller that goes away must not cancel the work the others wait for.
        result: T = await asyncio.shield(flight)
        return result

    def _land(self, key: Hashable, flight: asyncio.Future[Any]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not flight.cancelled():
            flight.exception()  # retrieved here, so a failure nobody awaited is not reported


@dataclass
class AppContext:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    key_ring: KeyRing | None
    tailscale: TailscaleClient
    notifier: RequestNotifier
    metrics: Metrics = field(default_factory=Metrics)
    # One refresh per grant at a time in this process; see grants.access_token_for.
    refreshes: SingleFlight = field(default_factory=SingleFlight)
    draining: bool = field(default=False)

    def require_key_ring(self) -> KeyRing:
        """The key ring, or a 503: without it no secret can be sealed or opened."""
        if self.key_ring is None:
            raise EncryptionUnavailable("No encryption key is loaded; secrets cannot be handled.")
        return self.key_ring
