"""Which event types any endpoint asks for, kept in memory: most deployments have no endpoint
for most events, and every status change would otherwise ask the database to find none.

Kept as ``service.config_cache`` keeps callers: until the endpoint table announces a change
(migration 0012), never while nobody listens for the announcement, five seconds at most. An
endpoint created a few milliseconds before an event, while its notice is on the way, may miss
that event, as one created a few milliseconds after it would; an endpoint removed or paused
is always seen, as a kept "someone wants it" only leads to reading the endpoints themselves.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from service.config_cache import ConfigCache
from service.webhooks.status import WebhookEventType
from service.webhooks.store import subscribed_event_types

# Where a session finds them: the session factory's ``info`` (``service.main``).
SESSION_INFO_KEY = "webhook_subscriptions"


class SubscribedEvents:
    """The event types some active endpoint has asked for, per process."""

    def __init__(self, generation: Callable[[], int | None]) -> None:
        self._kept: ConfigCache[str, frozenset[str]] = ConfigCache(generation, size=1)

    async def may_be_wanted(self, session: AsyncSession, event_type: WebhookEventType) -> bool:
        """False only when no active endpoint asks for ``event_type``, as far as is known."""
        read_under = self._kept.generation()
        if read_under is None:
            return True  # nothing can be kept: let the caller read the endpoints themselves
        wanted = self._kept.get("wanted")
        if wanted is None:
            wanted = await subscribed_event_types(session)
            self._kept.put("wanted", wanted, read_under)
        return str(event_type) in wanted

    def forget(self) -> None:
        self._kept.forget()


def kept_for(session: AsyncSession) -> SubscribedEvents | None:
    kept = session.info.get(SESSION_INFO_KEY)
    return kept if isinstance(kept, SubscribedEvents) else None


def forget_when_committed(session: AsyncSession) -> None:
    """``session`` adds an endpoint: forget what was kept the moment it commits, so the events
    that follow its creation here, before its notice arrives, reach it."""
    kept = kept_for(session)
    if kept is not None:
        event.listen(session.sync_session, "after_commit", lambda _: kept.forget(), once=True)
