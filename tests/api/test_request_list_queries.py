"""The request list costs the same few queries for one row as for a full page."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import CallerFactory, bearer


@contextmanager
def counted_statements(engine: AsyncEngine) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)


async def listing_cost(client: httpx.AsyncClient, engine: AsyncEngine, key: str, user: str) -> int:
    with counted_statements(engine) as statements:
        page = await client.get(f"/v1/users/{user}/provisioning-requests", headers=bearer(key))
    assert page.status_code == 200
    assert len(page.json()["items"]) >= 1
    assert statements  # the listener sees this app's queries
    return len(statements)


async def test_the_request_list_makes_no_query_per_row(
    client: httpx.AsyncClient, engine: AsyncEngine, make_caller: CallerFactory
) -> None:
    key = await make_caller("provision", "read")
    for user, count in (("few-rows", 1), ("many-rows", 12)):
        for n in range(count):
            made = await client.post(
                f"/v1/users/{user}/provisioning-requests",
                headers=bearer(key),
                json={"hostname": f"h{n}"},
            )
            assert made.status_code == 201
    assert await listing_cost(client, engine, key, "few-rows") == await listing_cost(
        client, engine, key, "many-rows"
    )
