"""Our NODE.CREATE links to Tailscale's whether or not Tailscale logs consents as events."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import bearer
from tests.helpers.browser import Browser
from tests.helpers.stack import SANDBOX_ADMIN
from tests.helpers.steps import claim_and_join, create_request, new_user

EVERYTHING = {"start": "2000-01-01T00:00:00Z", "end": "2100-01-01T00:00:00Z"}
UPSTREAM_LOG = "/api/v2/tailnet/-/logging/configuration"


async def upstream_events(sandbox: httpx.AsyncClient, event: str) -> httpx.Response:
    params = {**EVERYTHING, "event": event}
    return await sandbox.get(UPSTREAM_LOG, params=params, headers=SANDBOX_ADMIN)


async def our_linked_node_create(api: httpx.AsyncClient, key: str, user: str) -> dict[str, Any]:
    window = {**EVERYTHING, "user_id": user, "event": "NODE.CREATE"}
    for _ in range(100):  # the link job runs every dozen background ticks
        logs = (await api.get("/v1/audit", params=window, headers=bearer(key))).json()["logs"]
        if logs and "upstreamEventGroupID" in logs[0]:
            linked: dict[str, Any] = logs[0]
            return linked
        await asyncio.sleep(0.2)
    raise AssertionError(f"never linked: {logs}")


@pytest.mark.parametrize("consent_events", [True, False])
async def test_the_link_ignores_how_consent_is_logged(
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    caller_key: str,
    consent_events: bool,
) -> None:
    switches = {"oauth_app_events": consent_events}
    assert (await sandbox.patch("/sandbox/switches", json=switches)).status_code == 200
    user, hostname = new_user(), f"lk-{uuid.uuid4().hex[:8]}"
    request = await create_request(api, caller_key, user, hostname=hostname)
    await browser.consent(request["consent_url"], login="alice@example.com")
    joined = await claim_and_join(api, sandbox, caller_key, request["id"], hostname)

    consents = await upstream_events(sandbox, "OAUTH_APP.APPROVE")
    if consent_events:
        assert [e["actor"]["loginName"] for e in consents.json()["logs"]] == ["alice@example.com"]
    else:
        assert consents.status_code == 400  # a name outside Tailscale's closed list
    [theirs] = [
        e
        for e in (await upstream_events(sandbox, "NODE.CREATE")).json()["logs"]
        if e["target"]["id"] == joined["nodeId"]
    ]
    ours = await our_linked_node_create(api, caller_key, user)
    assert ours["target"]["id"] == joined["nodeId"]
    assert ours["upstreamEventGroupID"] == theirs["eventGroupID"]
