"""Caller keys for servers a test runs but shares no session with."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from service.callers.store import create_caller


async def caller_key_at(database_url: str, name: str, scopes: list[str]) -> str:
    """A new caller's key, written through a short engine of its own: for a server running
    on ``database_url`` that the test shares no session with."""
    engine = create_async_engine(database_url.replace("postgresql://", "postgresql+asyncpg://", 1))
    try:
        async with async_sessionmaker(engine)() as session, session.begin():
            _, key = await create_caller(session, name, scopes, [])
    finally:
        await engine.dispose()
    return key
