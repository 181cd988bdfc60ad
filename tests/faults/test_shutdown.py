"""SIGTERM to a real `tsprov serve` process with 20 calls in flight (item 29, a fault case).

On SIGTERM readiness drops first while the port still accepts, in-flight requests finish
(long-polls answer early, claims complete their mint), then the process closes and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.jobs import run_job
from service.settings import Settings
from service.state import AppContext
from tests.conftest import ROOT, bearer
from tests.faults.conftest import ServiceFactory
from tests.helpers.browser import Browser
from tests.helpers.fault_flows import (
    REUSABLE_SCOPE,
    add_fault,
    age_mint,
    claim,
    consented_user,
    logged,
    mint_intent_committed,
    ready_request,
)
from tests.helpers.figures import report_figure
from tests.helpers.servers import free_port, serve_environment
from tests.helpers.steps import Sessions, create_request, new_user

DRAIN_SECONDS = 1.0
MINT_LATENCY = 2.5


@asynccontextmanager
async def tsprov_serve(
    settings: Settings, log_path: Path, workers: int = 1
) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    """`python -m service serve` on a free port, up and ready; killed if a test leaves it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "service", "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(workers)]
    served = settings.model_copy(
        update={
            "oauth_scope": REUSABLE_SCOPE,
            "upstream_deadline_seconds": 5,
            "shutdown_drain_seconds": DRAIN_SECONDS,
        }
    )
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *command, cwd=ROOT, env=serve_environment(served, url), stdout=log, stderr=log
        )
    try:
        async with httpx.AsyncClient(base_url=url, timeout=2) as probe:
            for _ in range(300):
                try:
                    if (await probe.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.returncode is None, await asyncio.to_thread(log_path.read_text)
                await asyncio.sleep(0.1)
            else:
                output = await asyncio.to_thread(log_path.read_text)
                pytest.fail(f"tsprov serve did not become ready:\n{output}")
        yield url, process
    finally:
        await kill_if_running(process)


async def kill_if_running(process: asyncio.subprocess.Process) -> None:
    """A `tsprov serve` a test leaves running is killed, its workers first (they would
    outlive it), and waited for."""
    if process.returncode is None:
        for worker in worker_pids(process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker, signal.SIGKILL)
        process.kill()
    await process.wait()


def worker_pids(parent: int) -> list[int]:
    """The worker processes ``tsprov serve --workers N`` started (not its resource tracker)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError):
            fields = dict(
                line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
            )
            cmdline = (status.parent / "cmdline").read_bytes()
            if fields.get("PPid", "").strip() == str(parent) and b"spawn_main" in cmdline:
                found.append(int(status.parent.name))
    return sorted(found)


async def finished_at(call: Awaitable[httpx.Response]) -> tuple[httpx.Response, float]:
    answer = await call
    return answer, time.monotonic()


async def test_sigterm_drops_readiness_first_then_answers_every_call_in_flight(
    start_service: ServiceFactory,
    base_settings: Settings,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    caller_key: str,
    db: Sessions,
    tmp_path: Path,
) -> None:
    # The consent goes through an in-process replica; the process under test shares its database.
    replica = await start_service(reusable=True)
    user = await consented_user(sandbox, replica.api, browser, caller_key)
    async with (
        tsprov_serve(base_settings, tmp_path / "serve.log") as (url, process),
        httpx.AsyncClient(base_url=url, timeout=30) as api,
    ):
        ready = [await ready_request(api, caller_key, user) for _ in range(10)]
        waiting = [(await create_request(api, caller_key, new_user()))["id"] for _ in range(10)]
        await add_fault(sandbox, route="keys", method="POST", latency_seconds=MINT_LATENCY)
        polls = [
            asyncio.create_task(
                finished_at(
                    api.get(
                        f"/v1/provisioning-requests/{request_id}",
                        params={"wait_seconds": 30},
                        headers=bearer(caller_key),
                    )
                )
            )
            for request_id in waiting
        ]
        claims = [
            asyncio.create_task(finished_at(claim(api, caller_key, request_id)))
            for request_id in ready
        ]
        for request_id in ready:
            await mint_intent_committed(db, request_id)
        await asyncio.sleep(0.3)  # the long-polls are parked on their wake-ups

        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        # A load balancer's next probe, on a new connection, some time after the signal: the
        # port still accepts, and says it is not ready.
        await asyncio.sleep(DRAIN_SECONDS / 2)
        async with httpx.AsyncClient(base_url=url, timeout=5) as probe:
            readiness = await probe.get("/readyz")
        readiness_seen = time.monotonic()

        poll_answers = await asyncio.gather(*polls)
        claim_answers = await asyncio.gather(*claims)
        exit_code = await asyncio.wait_for(process.wait(), 15)
        exited = time.monotonic()

    assert readiness.status_code == 503
    assert readiness.json()["checks"]["accepting"] is False
    assert all(readiness_seen < done for _, done in claim_answers)
    finished = sum(answer.status_code == 200 for answer, _ in claim_answers)
    report_figure("claims_finished_during_drain", f"{finished} of {len(claim_answers)}")
    assert_every_call_answered(poll_answers, claim_answers, signalled)
    assert len(await logged(sandbox, "keys", method="POST", settle=10)) == 10
    assert exit_code == 0
    assert exited - signalled < DRAIN_SECONDS + MINT_LATENCY + 3
    served_log = await asyncio.to_thread((tmp_path / "serve.log").read_text)
    assert "Application shutdown complete" in served_log
    async with httpx.AsyncClient() as late:
        with pytest.raises(httpx.ConnectError):
            await late.get(f"{url}/healthz")


def assert_every_call_answered(
    polls: list[tuple[httpx.Response, float]],
    claims: list[tuple[httpx.Response, float]],
    signalled: float,
) -> None:
    # A reset connection would have raised in gather; each call got a whole answer.
    statuses: list[Any] = [answer.json()["status"] for answer, _ in polls]
    assert [answer.status_code for answer, _ in polls] == [200] * 10
    assert statuses == ["awaiting_consent"] * 10
    # They answered at the drain, not after their 30 s wait.
    assert all(done - signalled < 2.0 for _, done in polls)
    assert [answer.status_code for answer, _ in claims] == [200] * 10
    keys = {answer.json()["auth_key"] for answer, _ in claims}
    assert len(keys) == 10


async def test_a_claim_cut_off_by_a_killed_process_is_left_pending_and_reconciled(
    start_service: ServiceFactory,
    base_settings: Settings,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    caller_key: str,
    db: Sessions,
    jobs_context: AppContext,
    tmp_path: Path,
) -> None:
    replica = await start_service(reusable=True)
    user = await consented_user(sandbox, replica.api, browser, caller_key)
    request_id = await ready_request(replica.api, caller_key, user)
    # Tailscale makes the key after the process that asked for it has died.
    await add_fault(sandbox, route="keys", method="POST", latency_seconds=2.0, fail_times=1)
    async with (
        tsprov_serve(base_settings, tmp_path / "serve.log") as (url, process),
        httpx.AsyncClient(base_url=url, timeout=30) as api,
    ):
        cut = asyncio.create_task(claim(api, caller_key, request_id))
        await mint_intent_committed(db, request_id)
        await asyncio.sleep(0.8)  # the mint is on its way: held at the sandbox for two seconds
        process.kill()
        with pytest.raises(httpx.TransportError):
            await cut

    assert len(await logged(sandbox, "keys", method="POST", settle=1)) == 1
    # The other replica sees the unfinished mint and will not mint a second key meanwhile.
    pending = await claim(replica.api, caller_key, request_id)
    assert pending.status_code == 409
    assert pending.json()["code"] == "already_claimed"
    await age_mint(db, request_id)
    assert await run_job(jobs_context, "settle_pending_mints") >= 1
    settled = await claim(replica.api, caller_key, request_id)
    assert settled.status_code == 200, settled.text
    assert (await claim(replica.api, caller_key, request_id)).json()["code"] == "already_claimed"


async def test_workers_each_answer_and_each_drains_its_claims_on_sigterm(
    start_service: ServiceFactory,
    base_settings: Settings,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    caller_key: str,
    db: Sessions,
    tmp_path: Path,
) -> None:
    replica = await start_service(reusable=True)
    user = await consented_user(sandbox, replica.api, browser, caller_key)
    async with (
        tsprov_serve(base_settings, tmp_path / "serve.log", workers=2) as (url, process),
        httpx.AsyncClient(base_url=url, timeout=30) as api,
    ):
        workers = worker_pids(process.pid)
        assert len(workers) == 2
        # With one worker frozen, the other alone answers every call (each on a new
        # connection: a kept-alive one may belong to the frozen worker); then the other way.
        fresh = httpx.Limits(max_keepalive_connections=0)
        for frozen in workers:
            os.kill(frozen, signal.SIGSTOP)
            try:
                async with httpx.AsyncClient(base_url=url, timeout=10, limits=fresh) as probe:
                    answers = [await probe.get("/healthz") for _ in range(5)]
            finally:
                os.kill(frozen, signal.SIGCONT)
            assert [answer.status_code for answer in answers] == [200] * 5

        ready = [await ready_request(api, caller_key, user) for _ in range(6)]
        await add_fault(sandbox, route="keys", method="POST", latency_seconds=MINT_LATENCY)
        claims = [asyncio.create_task(claim(api, caller_key, request_id)) for request_id in ready]
        for request_id in ready:
            await mint_intent_committed(db, request_id)
        process.send_signal(signal.SIGTERM)
        answers = await asyncio.gather(*claims)
        exit_code = await asyncio.wait_for(process.wait(), 30)

    finished = sum(answer.status_code == 200 for answer in answers)
    report_figure("claims_finished_during_drain_two_workers", f"{finished} of {len(answers)}")
    assert [answer.status_code for answer in answers] == [200] * 6
    assert len({answer.json()["auth_key"] for answer in answers}) == 6
    assert exit_code == 0
    assert worker_pids(process.pid) == []


@pytest.mark.parametrize("workers", [1, 2])
async def test_ctrl_c_stops_the_parent_and_every_worker_without_a_traceback(
    base_settings: Settings, tmp_path: Path, workers: int
) -> None:
    # A terminal's Ctrl-C sends SIGINT to the whole foreground group: the parent and each
    # worker at once. The parent forwards it to each worker again, which may arrive once the
    # first is being handled (sent here too, a moment later, so that the two are not merged
    # into one pending signal). Each worker shuts down as on one Ctrl-C, the app's own
    # shutdown included, and says nothing alarming.
    log_path = tmp_path / "serve.log"
    async with tsprov_serve(base_settings, log_path, workers=workers) as (_, process):
        workers_started = worker_pids(process.pid)
        assert len(workers_started) == (workers if workers > 1 else 0)
        await every_worker_started(log_path, max(workers, 1))
        for pid in [process.pid, *workers_started]:
            os.kill(pid, signal.SIGINT)
        await asyncio.sleep(0.02)
        for pid in workers_started:
            with contextlib.suppress(ProcessLookupError):  # it may be gone already
                os.kill(pid, signal.SIGINT)
        exit_code = await asyncio.wait_for(process.wait(), 30)
    output = await asyncio.to_thread(log_path.read_text)
    assert exit_code == 128 + signal.SIGINT  # what any program a Ctrl-C stopped returns
    assert "Traceback" not in output, output
    assert output.count("Application shutdown complete") == max(workers, 1), output
    assert worker_pids(process.pid) == []


async def every_worker_started(log_path: Path, workers: int) -> None:
    """Wait until each worker has started its app (one answering is enough to be ready)."""
    for _ in range(300):
        output = await asyncio.to_thread(log_path.read_text)
        if output.count("Application startup complete") >= workers:
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"not every worker started:\n{output}")


async def test_ctrl_c_while_the_workers_start_stops_them_without_a_traceback(
    base_settings: Settings, tmp_path: Path
) -> None:
    # A Ctrl-C moments after `tsprov serve --workers 2`, while its workers are still
    # importing, reaches the parent and each worker: nothing started is left running, and
    # nothing alarming is said.
    log_path = tmp_path / "serve.log"
    command = [sys.executable, "-m", "service", "serve", "--port", str(free_port())]
    environment = serve_environment(base_settings, "http://127.0.0.1")
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *command, "--workers", "2", cwd=ROOT, env=environment, stdout=log, stderr=log
        )
    try:
        for _ in range(200):
            workers_started = worker_pids(process.pid)
            if len(workers_started) == 2:
                break
            await asyncio.sleep(0.01)
        assert len(workers_started) == 2
        for pid in [process.pid, *workers_started]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGINT)
        exit_code = await asyncio.wait_for(process.wait(), 30)
    finally:
        await kill_if_running(process)
    output = await asyncio.to_thread(log_path.read_text)
    assert exit_code == 128 + signal.SIGINT, output
    assert "Traceback" not in output, output
    assert "Application startup complete" not in output, output
    assert still_running(workers_started) == []


def still_running(pids: list[int]) -> list[int]:
    """Those of ``pids`` whose process has not ended (found even after being reparented)."""
    return [pid for pid in pids if Path(f"/proc/{pid}").exists()]
