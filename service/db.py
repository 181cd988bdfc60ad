"""Declarative base, engine and session factory; built by the lifespan, never at import."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from sqlalchemy import URL, CursorResult, MetaData, Result, event, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from service.settings import Settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# For a session that sends one read and nothing else: no transaction around it (the
# driver's BEGIN and ROLLBACK are round trips of their own). The pool resets the connection
# to the engine's isolation level when it is returned.
READ_ALONE = {"isolation_level": "AUTOCOMMIT"}


async def read_alone(session: AsyncSession) -> None:
    """Run the session's next read outside any transaction (see READ_ALONE).

    A session bound to a connection whose transaction someone else opened joins it instead.
    So does one behind PgBouncer in transaction mode (statement cache off): there, asyncpg
    prepares a statement and runs it in two exchanges, and outside a transaction PgBouncer
    may hand the second to another server connection, which never saw the statement.
    """
    bind = session.bind
    if isinstance(bind, AsyncConnection) and bind.in_transaction():
        return
    if bind is not None and _behind_transaction_pooler(bind.engine.url):
        return
    await session.connection(execution_options=READ_ALONE)


def _behind_transaction_pooler(url: URL) -> bool:
    # database_url_for turns the statement cache off for PgBouncer in transaction mode.
    return url.query.get(STATEMENT_CACHE_OFF[0]) == STATEMENT_CACHE_OFF[1]


POOL_RECYCLE_SECONDS = 300
STATEMENT_CACHE_OFF = ("prepared_statement_cache_size", "0")


def create_engine(settings: Settings) -> AsyncEngine:
    """An engine whose errors never print bound parameters (they can be secrets)."""
    engine = create_async_engine(
        database_url_for(settings),
        hide_parameters=True,
        pool_size=settings.db_pool_size,
        max_overflow=0,
        # A request waiting for a connection gets a 503 after this, never a hang.
        pool_timeout=settings.db_pool_timeout_seconds,
        # A connection dropped silently on the way (a NAT or load balancer forgetting an idle
        # flow, a failover without a reset) looks alive to the checkout check below; replacing
        # connections after five minutes bounds that, at one reconnect each per five minutes.
        pool_recycle=POOL_RECYCLE_SECONDS,
        connect_args=connect_arguments(settings),
    )
    event.listen(engine.sync_engine.pool, "checkout", _replace_if_closed)
    return engine


def _replace_if_closed(
    dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection
) -> None:
    """Hand out no connection the server has already closed, at no round trip.

    A Postgres restart (or a terminated backend) closes every pooled socket; asyncpg sees
    the close as soon as the event loop reads it and marks the connection closed. Raising
    DisconnectionError here makes the pool drop it and check out another, reconnecting as
    needed, so the request after a restart runs on a live connection. This replaces a ping
    per checkout (BEGIN, a statement and ROLLBACK: three round trips each time). A connection
    that dies while in use fails its statement; SQLAlchemy then sees a disconnect and
    invalidates every connection the pool made before it.
    """
    driver = record.driver_connection
    if driver is not None and driver.is_closed():
        raise DisconnectionError("the database closed this pooled connection")


def database_url_for(settings: Settings) -> URL:
    """DATABASE_URL, with SQLAlchemy's own prepared-statement cache off when asked."""
    url = make_url(settings.database_url)
    if settings.db_statement_cache:
        return url
    return url.update_query_dict(dict([STATEMENT_CACHE_OFF]))


def connect_arguments(settings: Settings) -> dict[str, Any]:
    """asyncpg's connect() arguments: timeouts, and what PgBouncer's transaction mode needs."""
    arguments: dict[str, Any] = {
        "timeout": settings.db_pool_timeout_seconds,
        "command_timeout": settings.db_statement_timeout_ms / 1000,
        "server_settings": {"application_name": "tsprov"},
    }
    if settings.db_statement_cache:
        arguments["server_settings"]["statement_timeout"] = str(settings.db_statement_timeout_ms)
        return arguments
    # PgBouncer refuses startup parameters it does not track (statement_timeout among
    # them); behind it, set the timeout on the role instead (README, scaling out).
    arguments["statement_cache_size"] = 0
    # A statement asyncpg still prepares (to learn result types) must not collide with one
    # another client left on the same server connection.
    arguments["prepared_statement_name_func"] = _unique_statement_name
    return arguments


def _unique_statement_name() -> str:
    return f"__asyncpg_{uuid.uuid4()}__"


def create_session_factory(
    engine: AsyncEngine, info: dict[str, object] | None = None
) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded values after commit; ``info`` is what every session carries
    for the code deep inside a transaction (what the process keeps in memory)."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False, info=info)


@asynccontextmanager
async def transaction(
    factory: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A session whose work commits on success and rolls back on any error."""
    async with factory() as session, session.begin():
        yield session


def rows_changed(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE touched."""
    # DML results are CursorResults at run time; the generic Result type hides rowcount.
    return cast(CursorResult[Any], result).rowcount or 0
