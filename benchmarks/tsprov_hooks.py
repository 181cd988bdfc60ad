"""Everything the benchmarks take from tsprov's own code, in one module.

tsprov's modules move as the service is reorganised; when they do, this is the only file of
``benchmarks/`` to update. The rest of the benchmarks reach tsprov through its CLI and HTTP.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from service.audit.signing import generate_signing_key
from service.crypto.keyring import generate_key_entry
from service.main import create_app
from service.ops.devdb import PostgresServer, ensure_database, find_server, with_database
from service.settings import Settings

__all__ = [
    "PostgresServer",
    "ensure_database",
    "expire_access_tokens",
    "find_server",
    "generate_key_entry",
    "generate_signing_key",
    "in_process_service",
    "with_database",
]

# A grant whose access token is past this is refreshed before its next use.
EXPIRE_ACCESS_TOKENS = text(
    "UPDATE consent_grant SET token_expires_at = now() - interval '1 minute' "
    "WHERE user_id = ANY(:users) AND mode = 'reusable' AND status = 'active'"
)


def settings_from_environment(environment: Mapping[str, str]) -> Settings:
    """The settings a ``tsprov serve`` process would read from these TSPROV_* variables."""
    values: dict[str, Any] = {
        name.removeprefix("TSPROV_").lower(): value
        for name, value in environment.items()
        if name.startswith("TSPROV_")
    }
    return Settings(**values)


@asynccontextmanager
async def in_process_service(
    environment: Mapping[str, str],
) -> AsyncIterator[tuple[httpx.AsyncClient, AsyncEngine]]:
    """tsprov built by its own factory, lifespan run, background jobs off; a client and engine.

    The engine is the one every request of this app uses, so hooks on it see all its SQL.
    """
    app = create_app(settings_from_environment(environment), run_background=False)
    async with app.router.lifespan_context(app):
        engine: AsyncEngine = app.state.context.engine
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1", timeout=30
        ) as client:
            yield client, engine


async def expire_access_tokens(database_url: str, users: list[str]) -> int:
    """Make the users' reusable grants due for a refresh, as the tests do; how many."""
    engine = create_async_engine(database_url.replace("postgresql://", "postgresql+asyncpg://", 1))
    try:
        async with engine.begin() as connection:
            result = await connection.execute(EXPIRE_ACCESS_TOKENS, {"users": users})
        return int(result.rowcount)
    finally:
        await engine.dispose()
