"""A tailnet with device approval: what a caller sees of a device that joined and waits."""

from __future__ import annotations

from typing import Any

import httpx

from tests.helpers.browser import Browser
from tests.helpers.joined_devices import events, provision, until, until_events
from tests.helpers.stack import SANDBOX_ADMIN


def joined(body: dict[str, Any]) -> bool:
    return body["status"] == "joined" and body["device"]["authorized"] is not None


async def upstream_authorized(sandbox: httpx.AsyncClient, node_id: str) -> bool:
    device = await sandbox.get(f"/api/v2/device/{node_id}", headers=SANDBOX_ADMIN)
    return bool(device.json()["authorized"])


async def approval(sandbox: httpx.AsyncClient, **switches: bool) -> None:
    answer = await sandbox.patch("/sandbox/switches", json={"device_approval": True, **switches})
    assert answer.status_code == 200, answer.text


async def test_without_approval_a_device_joins_authorized(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, browser: Browser, caller_key: str
) -> None:
    _, request_id, _ = await provision(api, sandbox, browser, caller_key)
    body = await until(api, caller_key, request_id, joined)
    assert body["device"]["authorized"] is True


async def test_a_waiting_device_shows_until_an_admin_approves_it(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, browser: Browser, caller_key: str
) -> None:
    await approval(sandbox)
    user, request_id, node_id = await provision(api, sandbox, browser, caller_key)
    body = await until(api, caller_key, request_id, joined)
    assert body["device"]["authorized"] is False
    [waiting] = await until_events(api, caller_key, user, "NODE.UPDATE", "AUTHORIZED")
    assert "waits for approval" in waiting["actionDetails"]
    assert not await upstream_authorized(sandbox, node_id)

    approve = {"authorized": True}
    answer = await sandbox.post(
        f"/api/v2/device/{node_id}/authorized", json=approve, headers=SANDBOX_ADMIN
    )
    assert answer.status_code == 200
    body = await until(api, caller_key, request_id, lambda b: b["device"]["authorized"])
    assert body["status"] == "joined"
    [approved] = await until_events(api, caller_key, user, "NODE.APPROVE")
    assert "approved at Tailscale" in approved["actionDetails"]


async def test_tsprov_approves_a_device_the_caller_asked_preauthorized(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, browser: Browser, caller_key: str
) -> None:
    await approval(sandbox)
    user, request_id, node_id = await provision(
        api, sandbox, browser, caller_key, preauthorized=True
    )
    body = await until(
        api, caller_key, request_id, lambda b: b["device"] and b["device"]["authorized"]
    )
    assert body["status"] == "joined"
    assert await upstream_authorized(sandbox, node_id)
    [approved] = await until_events(api, caller_key, user, "NODE.APPROVE")
    assert "approved by tsprov" in approved["actionDetails"]


async def test_a_402_on_approval_fails_the_request_clearly(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, browser: Browser, caller_key: str
) -> None:
    await approval(sandbox, device_quota_exceeded=True)
    user, request_id, node_id = await provision(
        api, sandbox, browser, caller_key, preauthorized=True
    )
    # Joined first, for as long as the follow-up takes to ask Tailscale.
    body = await until(api, caller_key, request_id, lambda b: b["status"] == "failed")
    assert body["device"] == {**body["device"], "node_id": node_id, "authorized": False}
    statuses = await events(api, caller_key, user, "PROVISIONING_REQUEST.UPDATE")
    assert statuses[-1]["new"] == "failed"
    assert statuses[-1]["error"] == "device_quota_exceeded"
    [failure] = await events(api, caller_key, user, "FAILED_REQUEST.UPDATE")
    assert "(402)" in failure["error"]
    assert not await upstream_authorized(sandbox, node_id)
