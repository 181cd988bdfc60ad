"""After a consent, claims, a retried and a failed mint and a contended refresh, every counter
/metrics exports has moved."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from tests.conftest import bearer
from tests.helpers.browser import Browser
from tests.helpers.steps import Sessions, expire_access_tokens
from tests.integration.test_reusable_grants import ask_ready, consented_user, reusable_mode

KEYS = "POST /api/v2/tailnet/{tailnet}/keys"
Samples = dict[str, float]


async def scrape(api: httpx.AsyncClient) -> Samples:
    """Each sample summed over labels, and each labelled one under ``name{k=v,…}`` too."""
    answer = await api.get("/metrics")
    assert answer.status_code == 200
    samples: defaultdict[str, float] = defaultdict(float)
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[sample.name] += sample.value
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] += sample.value
    return samples


async def fail_key_mints(sandbox: httpx.AsyncClient, times: int) -> None:
    rule = {"route": "keys", "method": "POST", "status": 429, "retry_after": "0",
            "fail_times": times}  # fmt: skip
    answer = await sandbox.post("/sandbox/faults", json=rule)
    assert answer.status_code == 201, answer.text


async def claim(api: httpx.AsyncClient, key: str, request_id: str) -> httpx.Response:
    return await api.post(f"/v1/provisioning-requests/{request_id}/claim", headers=bearer(key))


async def claim_while_another_replica_refreshes(
    api: httpx.AsyncClient, key: str, request_id: str, user: str, it_sessions: Sessions
) -> httpx.Response:
    """Hold the grant's row lock, as a replica refreshing it would, until the claim waits."""
    async with it_sessions() as session, session.begin():
        await session.execute(
            text("SELECT id FROM consent_grant WHERE user_id = :user FOR UPDATE"), {"user": user}
        )
        waits = (await scrape(api))["tsprov_grant_refresh_lock_waits_total"]
        claiming = asyncio.create_task(claim(api, key, request_id))
        for _ in range(300):
            if (await scrape(api))["tsprov_grant_refresh_lock_waits_total"] > waits:
                break
            await asyncio.sleep(0.05)
    return await claiming


async def test_each_counter_moves_after_a_flow(
    reusable_api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    caller_key: str,
    it_sessions: Sessions,
) -> None:
    before = await scrape(reusable_api)
    await reusable_mode(sandbox)
    user, first = await consented_user(reusable_api, browser, caller_key)

    await fail_key_mints(sandbox, times=1)
    assert (await claim(reusable_api, caller_key, first["id"])).status_code == 200

    failing = await ask_ready(reusable_api, caller_key, user, hostname="m2")
    await fail_key_mints(sandbox, times=10)
    refused = await claim(reusable_api, caller_key, failing["id"])
    assert refused.json()["code"] == "upstream_unavailable"
    assert (await sandbox.delete("/sandbox/faults")).status_code == 204

    third = await ask_ready(reusable_api, caller_key, user, hostname="m3")
    await expire_access_tokens(it_sessions, user)
    answer = await claim_while_another_replica_refreshes(
        reusable_api, caller_key, third["id"], user, it_sessions
    )
    assert answer.status_code == 200, answer.text

    after = await scrape(reusable_api)
    moved = {name for name in after if after[name] > before.get(name, 0.0)}
    assert {
        "tsprov_http_requests_total",
        "tsprov_http_request_seconds_count",
        f"tsprov_upstream_calls_total{{endpoint={KEYS},outcome=ok}}",
        f"tsprov_upstream_calls_total{{endpoint={KEYS},outcome=failed}}",
        "tsprov_upstream_calls_total{endpoint=POST /api/v2/oauth/token,outcome=ok}",
        "tsprov_upstream_call_seconds_count",
        f"tsprov_upstream_retries_total{{endpoint={KEYS}}}",
        "tsprov_upstream_failures_total{code=upstream_unavailable}",
        "tsprov_grant_refreshes_total{outcome=refreshed}",
        "tsprov_grant_refresh_lock_waits_total",
    } <= moved
    # Counted at most every 15 s, so present but not necessarily up to date here.
    assert "tsprov_provisioning_requests{status=claimed}" in after
    assert "tsprov_grants{status=needs_consent}" in after
    assert after["tsprov_db_pool_size"] == 10
    assert after["tsprov_upstream_breaker_state"] == 0
