"""Counting the SQL of create + claim pairs, one call at a time, against an in-process app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from benchmarks.floor_app import FloorConfig
from benchmarks.floor_app import create_app as create_floor
from benchmarks.load import REQUEST_BODY
from benchmarks.preparation import bearer
from benchmarks.sql_census import SqlCensus

# Pairs run before counting starts: the pool's connections and prepared statements exist.
UNCOUNTED_PAIRS = 5


@asynccontextmanager
async def in_process_floor(
    config: FloorConfig,
) -> AsyncIterator[tuple[httpx.AsyncClient, AsyncEngine]]:
    app = create_floor(config)
    async with app.router.lifespan_context(app):
        engine: AsyncEngine = app.state.floor.engine
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield client, engine


async def _pair(client: httpx.AsyncClient, key: str, user: str, census: SqlCensus) -> None:
    census.phase = "create"
    created = await client.post(
        f"/v1/users/{user}/provisioning-requests", headers=bearer(key), json=REQUEST_BODY
    )
    if created.status_code != 201 or created.json()["status"] != "ready":
        raise RuntimeError(f"create answered {created.status_code}: {created.text[:200]}")
    census.phase = "claim"
    claimed = await client.post(
        f"/v1/provisioning-requests/{created.json()['id']}/claim", headers=bearer(key)
    )
    if claimed.status_code != 200:
        raise RuntimeError(f"claim answered {claimed.status_code}: {claimed.text[:200]}")
    census.phase = ""


async def count_pairs(
    client: httpx.AsyncClient, engine: AsyncEngine, key: str, users: list[str], pairs: int
) -> SqlCensus:
    """The SQL census of ``pairs`` pairs, made one after another across ``users``."""
    census = SqlCensus()
    for index in range(UNCOUNTED_PAIRS):
        await _pair(client, key, users[index % len(users)], census)
    census.attach(engine)
    try:
        for index in range(pairs):
            await _pair(client, key, users[index % len(users)], census)
    finally:
        census.detach(engine)
    return census
