"""security.md item 37: long-polls are capped, share re-reads, and survive a lost listener."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from service.provisioning import reading
from service.settings import Settings
from service.state import AppContext
from tests.conftest import bearer
from tests.faults.pg_proxy import PostgresProxy
from tests.faults.test_database_faults import app_on, on_port
from tests.helpers.steps import create_request, new_user

KeyMaker = Callable[[], Awaitable[str]]


@asynccontextmanager
async def listening_app(
    settings: Settings,
) -> AsyncIterator[tuple[AppContext, httpx.AsyncClient]]:
    """The app with its listener started, as the lifespan starts it."""
    async with app_on(settings) as (context, api):
        await context.notifier.start()
        assert context.notifier.listening
        yield context, api


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait for ``condition`` (generously: it is an outcome under test, not a timing)."""
    for _ in range(3000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


def long_poll(api: httpx.AsyncClient, key: str, request_id: str) -> asyncio.Task[httpx.Response]:
    return asyncio.create_task(
        api.get(
            f"/v1/provisioning-requests/{request_id}",
            params={"wait_seconds": 30},
            headers=bearer(key),
        )
    )


async def cancel(api: httpx.AsyncClient, key: str, request_id: str) -> None:
    answer = await api.delete(f"/v1/provisioning-requests/{request_id}", headers=bearer(key))
    assert answer.status_code == 204, answer.text


async def listener_metric(api: httpx.AsyncClient) -> str:
    lines = (await api.get("/metrics")).text.splitlines()
    return next(line for line in lines if line.startswith("tsprov_request_listener_up "))


async def test_item_37_long_polls_are_capped_per_caller_and_in_all(
    base_settings: Settings, make_key: KeyMaker
) -> None:
    capped = base_settings.model_copy(
        update={"long_poll_limit_per_caller": 2, "long_poll_limit": 3}
    )
    alpha, beta, gamma = await make_key(), await make_key(), await make_key()
    async with listening_app(capped) as (context, api):
        request = await create_request(api, alpha, new_user())
        held = [long_poll(api, alpha, request["id"]) for _ in range(2)]
        await until(lambda: context.waits.waiting == 2, "two waits held")

        third = await long_poll(api, alpha, request["id"])
        assert third.status_code == 429
        assert third.json()["code"] == "too_many_waits"
        assert int(third.headers["retry-after"]) >= 1
        held.append(long_poll(api, beta, request["id"]))  # another key: within its own cap
        await until(lambda: context.waits.waiting == 3, "three waits held")
        over_all = await long_poll(api, gamma, request["id"])
        assert over_all.status_code == 429
        assert over_all.json()["code"] == "too_many_waits"
        plain = await api.get(f"/v1/provisioning-requests/{request['id']}", headers=bearer(gamma))
        assert plain.status_code == 200  # a read without waiting is never capped

        await cancel(api, alpha, request["id"])  # the NOTIFY wakes every wait
        answers = await asyncio.gather(*held)
        assert [answer.json()["status"] for answer in answers] == ["cancelled"] * 3
        assert context.waits.waiting == 0


async def test_item_37_waits_on_one_request_share_one_re_read(
    base_settings: Settings, make_key: KeyMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[uuid.UUID] = []
    original = reading.read_request

    async def counted(context: AppContext, key_ring: Any, request_id: uuid.UUID) -> Any:
        reads.append(request_id)
        return await original(context, key_ring, request_id)

    monkeypatch.setattr(reading, "read_request", counted)
    key = await make_key()
    async with listening_app(base_settings) as (_, api):
        request = await create_request(api, key, new_user())
        waits = [long_poll(api, key, request["id"]) for _ in range(10)]
        await until(lambda: len(reads) == 10, "each wait's first read")
        await cancel(api, key, request["id"])
        answers = await asyncio.gather(*waits)
    assert {answer.json()["status"] for answer in answers} == {"cancelled"}
    # One change, one re-read for all ten (a wait that wakes after it landed reads again).
    assert 1 <= len(reads) - 10 <= 3


async def test_item_37_the_listener_comes_back_after_its_connection_is_cut(
    base_settings: Settings, make_key: KeyMaker
) -> None:
    target = urlsplit(base_settings.database_url)
    proxy = await PostgresProxy(target.hostname or "127.0.0.1", target.port or 5432).start()
    key = await make_key()
    try:
        async with listening_app(on_port(base_settings, proxy.port)) as (context, api):
            assert await listener_metric(api) == "tsprov_request_listener_up 1.0"
            notifier, watched = context.notifier, uuid.uuid4()
            with notifier.watch(watched):  # woken once on the loss, once on the way back
                await proxy.drop()
                await until(
                    lambda: notifier.listening and notifier.version(watched) >= 2,
                    "the loss noticed and the listener back",
                )
            assert await listener_metric(api) == "tsprov_request_listener_up 1.0"

            # Listening, a wait polls no timer: only a NOTIFY on the new connection ends it
            # before its 30 seconds, with the new status.
            request = await create_request(api, key, new_user())
            waiting = long_poll(api, key, request["id"])
            await until(lambda: context.waits.waiting == 1, "the wait held")
            await cancel(api, key, request["id"])
            assert (await waiting).json()["status"] == "cancelled"
    finally:
        await proxy.close()


async def test_item_37_a_wait_reads_on_a_timer_only_while_nobody_listens(
    base_settings: Settings, make_key: KeyMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[uuid.UUID] = []
    original = reading.read_request

    async def counted(context: AppContext, key_ring: Any, request_id: uuid.UUID) -> Any:
        reads.append(request_id)
        return await original(context, key_ring, request_id)

    monkeypatch.setattr(reading, "read_request", counted)
    monkeypatch.setattr(reading, "LONG_POLL_RECHECK_SECONDS", 0.5)
    key = await make_key()
    path_params = {"wait_seconds": 2}
    async with app_on(base_settings) as (context, api):  # the listener never started
        request = await create_request(api, key, new_user())
        path = f"/v1/provisioning-requests/{request['id']}"
        await api.get(path, params=path_params, headers=bearer(key))
        polled = len(reads)
        await context.notifier.start()
        await api.get(path, params=path_params, headers=bearer(key))
        listened = len(reads) - polled
    assert polled >= 3  # the first read, then the timer's
    assert listened == 1  # the first read only: nothing changed, nothing was notified
