"""A real `tsprov serve` whose private Postgres cluster is stopped, started and restarted.

While the database is down the process lives (`/healthz` 200), says it is not ready
(`/readyz` 503) and refuses a create at once with 503; when it is back the process is ready
again, and its listening connection is back too, so a long-poll wakes on a change through
NOTIFY rather than on its fallback timer.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from service.ops.devdb import ensure_database, with_database
from service.ops.migrate import upgrade_head
from service.settings import Settings
from tests.conftest import bearer
from tests.faults.test_listener_restart import Cluster
from tests.faults.test_listener_restart import cluster as cluster  # the fixture, re-exported
from tests.faults.test_shutdown import tsprov_serve
from tests.helpers.callers import caller_key_at
from tests.helpers.figures import report_figure
from tests.helpers.steps import new_user

# Generous: a cluster stop or start on a busy two-core machine; never a measured figure.
PATIENCE_SECONDS = 30.0


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    ends = time.monotonic() + PATIENCE_SECONDS
    while time.monotonic() < ends:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"never: {what}")


async def migrated_database(cluster: Cluster) -> tuple[str, str]:
    """The cluster's tsprov database, migrated, and a caller key in it."""
    server = cluster.url.replace("postgresql://", "postgresql+asyncpg://", 1)
    url = with_database(server, "tsprov")
    await ensure_database(url, recreate=True)
    await asyncio.to_thread(upgrade_head, url)
    key = await caller_key_at(url, f"restart-{uuid.uuid4().hex[:8]}", ["provision", "read"])
    return url, key


async def test_a_database_stopped_then_restarted_under_a_real_process(
    cluster: Cluster, base_settings: Settings, tmp_path: Path
) -> None:
    url, key = await migrated_database(cluster)
    settings = base_settings.model_copy(update={"database_url": url})
    async with (
        tsprov_serve(settings, tmp_path / "serve.log") as (served, _),
        httpx.AsyncClient(base_url=served, timeout=30) as api,
    ):

        async def answers(path: str, status: int) -> bool:
            try:
                return (await api.get(path)).status_code == status
            except httpx.TransportError:
                return False

        async def listening() -> bool:
            text = (await api.get("/metrics")).text
            return "tsprov_request_listener_up 1.0" in text

        async def create() -> httpx.Response:
            path = f"/v1/users/{new_user()}/provisioning-requests"
            return await api.post(path, json={}, headers=bearer(key))

        log = str(cluster.data.parent / "log")
        await asyncio.to_thread(cluster.pg_ctl, "-m", "fast", "-w", "stop")
        assert (await api.get("/healthz")).status_code == 200
        await eventually(lambda: answers("/readyz", 503), "not ready while Postgres is down")
        refused = await create()
        assert refused.status_code == 503, refused.text

        port = urlsplit(cluster.url).port
        options = f"-p {port} -c listen_addresses=127.0.0.1 -k {cluster.data.parent}"
        await asyncio.to_thread(cluster.pg_ctl, "-l", log, "-o", options, "-w", "start")
        back = time.monotonic()
        await eventually(lambda: answers("/readyz", 200), "ready once Postgres is back")
        report_figure("ready_after_postgres_back_seconds", time.monotonic() - back)
        await eventually(listening, "the listening connection back")

        await asyncio.to_thread(cluster.pg_ctl, "-l", log, "-m", "fast", "-w", "restart")
        await eventually(listening, "the listening connection back after a restart")
        made = await create()
        assert made.status_code == 201, made.text
        request_id = made.json()["id"]
        poll = asyncio.create_task(
            api.get(
                f"/v1/provisioning-requests/{request_id}",
                params={"wait_seconds": 25},
                headers=bearer(key),
            )
        )
        await asyncio.sleep(0.5)  # parked on its wake-up
        changed = time.monotonic()
        cancelled = await api.delete(f"/v1/provisioning-requests/{request_id}", headers=bearer(key))
        assert cancelled.status_code == 204
        woken = await asyncio.wait_for(poll, 20)
        report_figure("long_poll_wake_after_restart_seconds", time.monotonic() - changed)
    assert woken.json()["status"] == "cancelled"
