"""A database that is saturated, slow, refusing or silent (items 28 and 29).

Pool exhaustion or a slow database → 503 within a bounded time, never a hang; /healthz
stays 200 while the database is down; /readyz turns 503 within a second.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from sqlalchemy import text

from service.main import build_context, close_context, create_app
from service.settings import Settings
from service.state import AppContext
from tests.conftest import bearer
from tests.faults.pg_proxy import PostgresProxy
from tests.helpers.servers import free_port
from tests.helpers.steps import Sessions, create_request, new_user

# /readyz's own database check gives up after 0.8 s.
READY_WITHIN = 1.0


@asynccontextmanager
async def app_on(settings: Settings) -> AsyncIterator[tuple[AppContext, httpx.AsyncClient]]:
    """The app as ``tsprov serve`` builds it from ``settings``, served over ASGI."""
    context = await build_context(settings)
    transport = httpx.ASGITransport(app=create_app(context=context))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://tsprov.test") as api:
            yield context, api
    finally:
        await close_context(context)


def on_port(settings: Settings, port: int, **overrides: Any) -> Settings:
    """The same database, reached through another local port."""
    parts = urlsplit(settings.database_url)
    netloc = f"{parts.username}@127.0.0.1:{port}" if parts.username else f"127.0.0.1:{port}"
    url = urlunsplit(parts._replace(netloc=netloc))
    return settings.model_copy(update={"database_url": url, **overrides})


async def timed(
    api: httpx.AsyncClient, method: str, url: str, **kwargs: Any
) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    answer = await api.request(method, url, **kwargs)
    return answer, time.monotonic() - started


def assert_database_unavailable(answer: httpx.Response) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.json()["code"] == "database_unavailable"
    assert answer.headers["retry-after"] == "1"


async def test_an_exhausted_pool_answers_503_quickly_instead_of_hanging(
    base_settings: Settings, caller_key: str
) -> None:
    settings = base_settings.model_copy(update={"db_pool_size": 1, "db_pool_timeout_seconds": 0.3})
    listing = f"/v1/users/{new_user()}/provisioning-requests"
    async with app_on(settings) as (context, api):
        async with context.engine.connect() as held:
            await held.execute(text("SELECT 1"))  # the pool's only connection, checked out
            answer, elapsed = await timed(api, "GET", listing, headers=bearer(caller_key))
        assert_database_unavailable(answer)
        assert elapsed < 1.0
        assert (await api.get(listing, headers=bearer(caller_key))).status_code == 200


async def test_pooled_connections_the_server_closed_cost_no_request(
    base_settings: Settings, caller_key: str, db: Sessions
) -> None:
    # What a Postgres restart does to an idle pool, without restarting the shared server.
    settings = base_settings.model_copy(update={"db_pool_size": 4})
    async with app_on(settings) as (_, api):
        await asyncio.gather(*(create_request(api, caller_key, new_user()) for _ in range(4)))
        async with db() as session:
            ended = await session.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND application_name = 'tsprov' "
                    "AND pid <> pg_backend_pid()"
                )
            )
        assert ended is not None
        assert ended >= 4
        await asyncio.sleep(0.2)  # the event loop reads each socket's close
        answers = await asyncio.gather(
            *(
                api.post(
                    f"/v1/users/{new_user()}/provisioning-requests",
                    headers=bearer(caller_key),
                    json={},
                )
                for _ in range(4)
            )
        )
    assert [answer.status_code for answer in answers] == [201] * 4, [a.text for a in answers]


async def test_a_query_stuck_behind_a_lock_is_cut_at_the_statement_timeout(
    base_settings: Settings, caller_key: str, db: Sessions
) -> None:
    settings = base_settings.model_copy(update={"db_statement_timeout_ms": 300})
    async with app_on(settings) as (_, api):
        request = await create_request(api, caller_key, new_user())
        cancel = f"/v1/provisioning-requests/{request['id']}"
        async with db() as session, session.begin():
            await session.execute(
                text("SELECT id FROM provisioning_request WHERE id = :id FOR UPDATE"),
                {"id": uuid.UUID(request["id"])},
            )
            answer, elapsed = await timed(api, "DELETE", cancel, headers=bearer(caller_key))
        assert_database_unavailable(answer)
        assert elapsed < 1.0
        assert (await api.delete(cancel, headers=bearer(caller_key))).status_code == 204


async def test_healthz_stays_up_and_readyz_fails_while_the_database_refuses(
    base_settings: Settings, caller_key: str
) -> None:
    async with app_on(on_port(base_settings, free_port())) as (_, api):
        health = await api.get("/healthz")
        ready, elapsed = await timed(api, "GET", "/readyz")
        listing, _ = await timed(
            api, "GET", f"/v1/users/{new_user()}/provisioning-requests", headers=bearer(caller_key)
        )
    assert health.status_code == 200
    assert ready.status_code == 503
    assert ready.json()["checks"] == {
        "database": False,
        "encryption_keys": True,
        "accepting": True,
    }
    assert elapsed < READY_WITHIN
    assert_database_unavailable(listing)


async def test_a_database_that_stops_answering_fails_readiness_within_a_second(
    base_settings: Settings, caller_key: str
) -> None:
    target = urlsplit(base_settings.database_url)
    proxy = await PostgresProxy(target.hostname or "127.0.0.1", target.port or 5432).start()
    settings = on_port(
        base_settings, proxy.port, db_statement_timeout_ms=500, db_pool_timeout_seconds=0.5
    )
    listing = f"/v1/users/{new_user()}/provisioning-requests"
    try:
        async with app_on(settings) as (_, api):
            assert (await api.get("/readyz")).status_code == 200
            assert (await api.get(listing, headers=bearer(caller_key))).status_code == 200
            proxy.freeze()

            probe = asyncio.create_task(timed(api, "GET", "/readyz"))
            health, health_elapsed = await timed(api, "GET", "/healthz")
            ready, ready_elapsed = await probe
            stuck, stuck_elapsed = await timed(api, "GET", listing, headers=bearer(caller_key))

            assert health.status_code == 200
            assert health_elapsed < 0.45  # liveness never waits out the 0.5 s statement timeout
            assert ready.status_code == 503
            assert ready.json()["checks"]["database"] is False
            assert ready_elapsed < READY_WITHIN
            # Bounded by the statement timeout (the pool's pre-ping is a statement too).
            assert_database_unavailable(stuck)
            assert stuck_elapsed < 2.0

            proxy.thaw()
            assert (await api.get("/readyz")).status_code == 200
    finally:
        await proxy.close()
