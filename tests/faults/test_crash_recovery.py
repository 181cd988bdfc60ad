"""kill -9 on a real `tsprov serve` mid-mint, then a restart: claimable again, no key left live.

The killed process's listening connection vanishes from pg_stat_activity with it, so the
restarted process's reconciler settles the mint on its next run instead of waiting out the
two-minute lease, and deletes the key Tailscale made for the dead claim.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from service.settings import Settings
from tests.faults.conftest import ServiceFactory
from tests.faults.test_shutdown import tsprov_serve
from tests.helpers.browser import Browser
from tests.helpers.fault_flows import (
    add_fault,
    claim,
    consented_user,
    logged,
    mint_intent_committed,
    ready_request,
    set_switches,
)
from tests.helpers.figures import report_figure
from tests.helpers.steps import Sessions, create_request, fetch_request, new_user

KEY_OBSERVER_SCOPES = ["devices:core", "logs:configuration:read", "auth_keys"]
# Far inside the two-minute lease: only a settled dead owner lets a claim through by then.
RECOVERY_WINDOW_SECONDS = 40


async def claim_until_handed_out(api: httpx.AsyncClient, key: str, request_id: str) -> None:
    """Claim every half second until a key comes back; meanwhile only "being claimed"."""
    for _ in range(RECOVERY_WINDOW_SECONDS * 2):
        answer = await claim(api, key, request_id)
        if answer.status_code == 200:
            assert answer.json()["auth_key"].startswith("tskey-auth-")
            return
        assert answer.json()["code"] == "already_claimed", answer.text
        await asyncio.sleep(0.5)
    raise AssertionError("the request was never claimable again after the restart")


async def deleted_keys(sandbox: httpx.AsyncClient) -> int:
    """How many keys were deleted at the sandbox, waiting up to the recovery window for one."""
    for _ in range(RECOVERY_WINDOW_SECONDS):
        deleted = await logged(sandbox, "keys", method="DELETE", settle=1)
        if deleted:
            return len(deleted)
    return 0


async def test_kill_9_mid_mint_then_restart_is_claimable_and_the_orphan_key_deleted(
    start_service: ServiceFactory,
    base_settings: Settings,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    caller_key: str,
    db: Sessions,
    tmp_path: Path,
) -> None:
    await set_switches(sandbox, observer_scopes=KEY_OBSERVER_SCOPES)
    replica = await start_service(reusable=True)
    user = await consented_user(sandbox, replica.api, browser, caller_key)
    request_id = await ready_request(replica.api, caller_key, user)
    # Tailscale makes the key at once and its answer trickles in: the process dies reading it.
    await add_fault(sandbox, route="keys", method="POST", drip_seconds=3.0, fail_times=1)
    settings = base_settings.model_copy(update={"background_interval_seconds": 0.5})
    async with (
        tsprov_serve(settings, tmp_path / "killed.log") as (url, process),
        httpx.AsyncClient(base_url=url, timeout=30) as api,
    ):
        cut = asyncio.create_task(claim(api, caller_key, request_id))
        await mint_intent_committed(db, request_id)
        await asyncio.sleep(0.5)  # the key is made; its answer is on its way
        process.kill()
        killed = time.monotonic()
        await asyncio.gather(cut, return_exceptions=True)
    # Tailscale made the key for a claim whose process is gone: nobody holds its secret.
    await logged(sandbox, "keys", method="POST", settle=1)  # logged once its answer has ended
    minted = await logged(sandbox, "keys", method="POST", settle=1)
    assert [entry["status"] for entry in minted] == [200]

    async with (
        tsprov_serve(settings, tmp_path / "restarted.log") as (url, _),
        httpx.AsyncClient(base_url=url, timeout=30) as api,
    ):
        restarted = time.monotonic()
        await claim_until_handed_out(api, caller_key, request_id)
        report_figure("claimable_after_restart_seconds", time.monotonic() - restarted)
        again = await claim(api, caller_key, request_id)
        # Deleted at the first look, or at the last once every call the mint made has ended.
        deleted = await deleted_keys(sandbox)
        report_figure("orphan_key_deleted_after_kill_seconds", time.monotonic() - killed)
        report_figure("orphan_keys_deleted", deleted)

    assert again.json()["code"] == "already_claimed"
    assert len(await logged(sandbox, "keys", method="POST")) == 2  # the orphan and the one out
    assert deleted == 1, "the key minted for the dead claim is still live at Tailscale"


async def test_kill_9_during_the_code_exchange_leaves_the_request_awaiting_consent(
    start_service: ServiceFactory,
    base_settings: Settings,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    caller_key: str,
    tmp_path: Path,
) -> None:
    await set_switches(sandbox, grant_mode="reusable")
    replica = await start_service(reusable=True)
    created = await create_request(replica.api, caller_key, new_user())
    authorize_url = await browser.open_consent(created["consent_url"])
    callback_url = httpx.URL(await browser.decide(authorize_url, login="alice@example.com"))
    # The code exchange is held at Tailscale while the process doing it is killed.
    held = {"route": "token", "grant_type": "authorization_code", "latency_seconds": 3.0}
    await add_fault(sandbox, **held, fail_times=1)
    async with tsprov_serve(base_settings, tmp_path / "callback.log") as (url, process):
        served = httpx.URL(url)
        exchange = asyncio.create_task(
            browser.get(str(callback_url.copy_with(host=served.host, port=served.port)))
        )
        await asyncio.sleep(1.0)  # the callback is waiting on Tailscale's token endpoint
        process.kill()
        cut = await asyncio.gather(exchange, return_exceptions=True)
    assert isinstance(cut[0], httpx.TransportError), cut[0]

    waiting = await fetch_request(replica.api, caller_key, created["id"])
    assert waiting["status"] == "awaiting_consent"
    reopened = await browser.consent(created["consent_url"], login="alice@example.com")
    assert reopened.status_code == 303, reopened.text
    assert (await fetch_request(replica.api, caller_key, created["id"]))["status"] == "ready"
    # Both exchanges reached Tailscale: the one cut by the kill, and the reopened link's.
    exchanges = await logged(sandbox, "token", grant_type="authorization_code", settle=2)
    assert len(exchanges) == 2
