"""A lone read runs without a transaction, except behind PgBouncer in transaction mode."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker

from service.db import create_engine, read_alone
from service.settings import Settings


@pytest.mark.parametrize(("statement_cache", "isolation"), [(True, "AUTOCOMMIT"), (False, None)])
async def test_a_lone_read_skips_the_transaction_only_where_a_connection_stays_pinned(
    database_url: str, statement_cache: bool, isolation: str | None
) -> None:
    # Behind PgBouncer in transaction mode (statement cache off) a statement prepared
    # outside a transaction may run on another server connection, which never saw it.
    settings = Settings(
        env="development",
        database_url=database_url,
        public_url="http://127.0.0.1:8000",
        db_statement_cache=statement_cache,
    )
    engine = create_engine(settings)
    try:
        async with async_sessionmaker(engine)() as session:
            await read_alone(session)
            assert await session.scalar(text("SELECT 1")) == 1
            connection = (await session.connection()).sync_connection
            assert connection is not None
            assert connection.get_execution_options().get("isolation_level") == isolation
    finally:
        await engine.dispose()
