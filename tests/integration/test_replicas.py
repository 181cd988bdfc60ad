"""Two `tsprov serve` processes on one database behave as one service."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import bearer
from tests.helpers.browser import Browser
from tests.helpers.servers import free_port, serve_environment
from tests.helpers.steps import expire_access_tokens
from tests.integration.conftest import Stack
from tests.integration.test_reusable_grants import (
    ask_ready,
    consented_user,
    reusable_mode,
    token_calls,
)


def wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"replica exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"replica at {url} did not become ready")


@pytest.fixture(scope="module")
def replicas(stack: Stack) -> Iterator[list[str]]:
    """Two service processes, started the way operators start them."""
    processes, urls = [], []
    for _ in range(2):
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "service", "serve", "--port", str(port)],
            env=serve_environment(stack.reusable_settings, f"http://127.0.0.1:{port}"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        processes.append(process)
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for url, process in zip(urls, processes, strict=True):
            wait_healthy(url, process)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


async def test_a_long_poll_on_one_replica_wakes_on_a_change_through_the_other(
    replicas: list[str], caller_key: str
) -> None:
    first, second = (httpx.AsyncClient(base_url=url, timeout=30) for url in replicas)
    async with first, second:
        created = await first.post(
            "/v1/users/replica-user/provisioning-requests", headers=bearer(caller_key), json={}
        )
        request_id = created.json()["id"]
        poll = asyncio.create_task(
            first.get(
                f"/v1/provisioning-requests/{request_id}",
                params={"wait_seconds": 20},
                headers=bearer(caller_key),
            )
        )
        await asyncio.sleep(0.5)
        started = time.monotonic()
        cancelled = await second.delete(
            f"/v1/provisioning-requests/{request_id}", headers=bearer(caller_key)
        )
        assert cancelled.status_code == 204
        answer = await poll
        # The 5 s fallback timer would fire 4.5 s from here: this wake-up came through NOTIFY.
        assert time.monotonic() - started < 3.5
        assert answer.json()["status"] == "cancelled"


async def test_two_replicas_refresh_an_expired_grant_once(
    replicas: list[str],
    reusable_api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    caller_key: str,
    it_sessions: async_sessionmaker[AsyncSession],
) -> None:
    await reusable_mode(sandbox)
    user, _ = await consented_user(reusable_api, browser, caller_key)
    await expire_access_tokens(it_sessions, user)
    clients = [httpx.AsyncClient(base_url=url, timeout=30) for url in replicas]

    async def provision(client: httpx.AsyncClient) -> int:
        request = await ask_ready(client, caller_key, user)
        claim = await client.post(
            f"/v1/provisioning-requests/{request['id']}/claim", headers=bearer(caller_key)
        )
        return claim.status_code

    try:
        statuses = await asyncio.gather(*(provision(clients[i % 2]) for i in range(20)))
    finally:
        for client in clients:
            await client.aclose()
    assert statuses == [200] * 20
    assert await token_calls(sandbox, "refresh_token") == 1
