"""Cross-replica wake-ups for long-polls, through Postgres LISTEN/NOTIFY.

A change to a provisioning request's status, or the end of a key mint, sends ``NOTIFY`` on
CHANNEL from a trigger on the table (migration 0013), inside the transaction that makes it:
the wake-up is delivered only if, and when, the change commits, on every replica listening,
and costs the app no statement of its own. The listening connection is watched: when it is
lost (a database restart, a failover, a cut connection) every waiter is woken to re-read,
long-polls fall back to a short timer, and the connection is re-opened with a capped
backoff; once it is back, waiters are woken once more for whatever changed in between.

The same connection hears when callers or webhook endpoints change (a trigger announces every
change to those tables, migration 0012): ``config_generation`` moves on each announcement and
whenever the connection is lost or regained, so what a process keeps of them
(``service.config_cache``) is forgotten the moment it may be stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

# Named in the trigger of migration 0013 too.
CHANNEL = "tsprov_request_changed"
CONFIG_CHANNEL = "tsprov_config_changed"
RECONNECT_FIRST_SECONDS = 0.5
RECONNECT_MAX_SECONDS = 10.0
# A connection cut without a word (a dropped route, a frozen peer) is noticed only by using it.
HEARTBEAT_SECONDS = 30.0
PROCESS_NAME_PREFIX = "tsprov-"
log = logging.getLogger("tsprov.notify")
# A string: asyncpg's classes are generic only to the type checker.
Connection: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"


class RequestNotifier:
    """Holds one listening connection, kept open, and wakes the long-polls waiting on a request."""

    def __init__(self, database_url: str) -> None:
        self._dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
        # This process's name in pg_stat_activity while it listens: the owner of its mints.
        self.process_name = f"{PROCESS_NAME_PREFIX}{uuid.uuid4().hex}"
        self._waiters: defaultdict[str, set[asyncio.Event]] = defaultdict(set)
        self._connection: asyncpg.Connection[Any] | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        # Per watched request, how many wake-ups it has had: a re-read started at a version
        # has seen every change notified before it.
        self._versions: dict[str, int] = {}
        self._config_generation = 0

    @property
    def mint_owner(self) -> str | None:
        """Who owns a mint started now: this process, when Postgres can see it alive."""
        return self.process_name if self.listening else None

    @property
    def listening(self) -> bool:
        """Whether NOTIFY wake-ups arrive now; while not, long-polls re-read on a timer."""
        return self._connection is not None and not self._connection.is_closed()

    @property
    def config_generation(self) -> int | None:
        """Moves whenever callers or webhook endpoints may have changed; None while nobody
        listens, when a change could go unheard."""
        return self._config_generation if self.listening else None

    async def start(self) -> None:
        """Listen now if the database answers, and keep listening from then on."""
        await self._connect()
        self._keeper = asyncio.create_task(self._keep_listening(), name="tsprov-listen")

    async def stop(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
            self._keeper = None
        if self._connection is not None:
            connection, self._connection = self._connection, None
            connection.remove_termination_listener(self._on_lost)  # closing it is no loss
            with contextlib.suppress(OSError, asyncpg.PostgresError, TimeoutError):
                await connection.close(timeout=2)

    async def _connect(self) -> bool:
        try:
            connection = await asyncpg.connect(
                self._dsn, timeout=5, server_settings={"application_name": self.process_name}
            )
            await connection.add_listener(CHANNEL, self._on_notify)
            await connection.add_listener(CONFIG_CHANNEL, self._on_config_notice)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            # Long-polls still work without it: they re-read on a short timer.
            log.warning("not listening for request changes (%s); polling", type(exc).__name__)
            return False
        connection.add_termination_listener(self._on_lost)
        self._connection = connection
        self._lost.clear()
        self._config_generation += 1  # whatever changed while nobody listened
        self.wake_all()
        return True

    def _on_lost(self, _conn: Connection) -> None:
        log.warning("the listening connection was lost; long-polls poll until it is back")
        self._connection = None
        self._config_generation += 1
        self._lost.set()
        self.wake_all()  # each waiter re-reads now, and then waits on the timer

    async def _keep_listening(self) -> None:
        delay = RECONNECT_FIRST_SECONDS
        while True:
            if self.listening:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._lost.wait(), HEARTBEAT_SECONDS)
                await self._check_alive()
                delay = RECONNECT_FIRST_SECONDS
                continue
            if await self._connect():
                log.info("listening for request changes again")
                continue
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_SECONDS)

    async def _check_alive(self) -> None:
        connection = self._connection
        if connection is None or connection.is_closed():
            return
        try:
            await asyncio.wait_for(connection.execute("SELECT 1"), timeout=5)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            connection.terminate()
            if self._connection is connection:
                self._on_lost(connection)

    def _on_notify(self, _conn: Connection, _pid: int, _channel: str, payload: object) -> None:
        self._wake(str(payload))

    def _on_config_notice(self, _conn: Connection, _pid: int, _chan: str, _text: object) -> None:
        self._config_generation += 1

    def _wake(self, key: str) -> None:
        if key in self._waiters:
            self._versions[key] = self._versions.get(key, 0) + 1
            for event in self._waiters[key]:
                event.set()

    def wake_all(self) -> None:
        """Wake every long-poll, so each re-checks whether it should answer now."""
        for key in list(self._waiters):
            self._wake(key)

    def version(self, request_id: uuid.UUID) -> int:
        """How many wake-ups ``request_id`` has had while watched (see ``watch``)."""
        return self._versions.get(str(request_id), 0)

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
                self._versions.pop(key, None)
