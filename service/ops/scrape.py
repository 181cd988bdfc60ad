"""The gauges set when ``/metrics`` is scraped: breaker, pool, and statuses counted briefly cached.

Counting statuses is two grouped queries; a cache keeps a scrape every few seconds from
several Prometheus servers down to one count per interval and replica.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from sqlalchemy.pool import Pool, QueuePool

from service.db import transaction
from service.grants.store import count_grants_by_status
from service.ops.metrics import BREAKER_STATES
from service.provisioning.store import count_requests_by_status
from service.state import AppContext

log = logging.getLogger("tsprov.metrics")
STATUS_CACHE_SECONDS = 15.0
# A slow database must not make the scrape hang; the last counts stay until the next one.
COUNT_TIMEOUT_SECONDS = 1.0
# Counts given up on, kept referenced until their cleanup ends (asyncio holds tasks weakly).
_abandoned: set[asyncio.Task[Any]] = set()


async def refresh_scrape_gauges(context: AppContext) -> None:
    metrics = context.metrics
    metrics.breaker_state.set(BREAKER_STATES[context.tailscale.breaker_state])
    pool = context.engine.pool
    if isinstance(pool, QueuePool):
        metrics.pool_size.set(pool.size())
        metrics.pool_in_use.set(pool.checkedout())
    metrics.pool_waiting.set(waiting_for_connection(pool))
    if time.monotonic() - metrics.counted_at >= STATUS_CACHE_SECONDS:
        await _count_statuses(context)


async def _count_statuses(context: AppContext) -> None:
    # Stamped before counting: a failing database is asked again next interval, not at
    # every scrape.
    context.metrics.counted_at = time.monotonic()
    counting = asyncio.create_task(_count(context))
    done, _ = await asyncio.wait({counting}, timeout=COUNT_TIMEOUT_SECONDS)
    if not done:
        # Rolling back on a silent database can take longer than the count itself: let
        # the cancelled task finish on its own and answer the scrape now.
        counting.cancel()
        _abandoned.add(counting)
        counting.add_done_callback(_forget)
        log.warning("counting statuses for metrics took over %s s", COUNT_TIMEOUT_SECONDS)
        return
    error = counting.exception()
    if error is not None:  # the scrape answers with the last counts
        log.warning("could not count statuses for metrics: %s", type(error).__name__)
        return
    grants, requests = counting.result()
    for status, count in grants.items():
        context.metrics.grants_by_status.labels(status).set(count)
    for status, count in requests.items():
        context.metrics.requests_by_status.labels(status).set(count)


async def _count(context: AppContext) -> tuple[dict[str, int], dict[str, int]]:
    async with transaction(context.sessions) as session:
        return await count_grants_by_status(session), await count_requests_by_status(session)


def _forget(task: asyncio.Task[Any]) -> None:
    _abandoned.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not report it as lost


def waiting_for_connection(pool: Pool) -> int:
    """Tasks blocked in the pool's checkout now.

    SQLAlchemy counts checked-out connections but not waiters; its async pool queues them
    on an asyncio.Queue, whose pending getters are the waiters. A test saturates a pool and
    checks this figure, so a change in either library shows up there.
    """
    queue: Any = getattr(getattr(pool, "_pool", None), "_queue", None)
    getters = getattr(queue, "_getters", ())
    return sum(1 for getter in getters if not getter.done())
