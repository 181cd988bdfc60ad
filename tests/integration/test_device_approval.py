"""A tailnet with device approval: what a caller sees of a device that joined and waits."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from tests.conftest import bearer
from tests.helpers.browser import Browser
from tests.helpers.stack import SANDBOX_ADMIN
from tests.helpers.steps import claim_and_join, create_request, new_user

EVERYTHING = {"start": "2000-01-01T00:00:00Z", "end": "2100-01-01T00:00:00Z"}
Check = Callable[[dict[str, Any]], bool]


async def until(api: httpx.AsyncClient, key: str, request_id: str, check: Check) -> dict[str, Any]:
    """The request once ``check`` holds; the background jobs run every few tenths of a second."""
    for _ in range(150):
        answer = await api.get(f"/v1/provisioning-requests/{request_id}", headers=bearer(key))
        body: dict[str, Any] = answer.json()
        if check(body):
            return body
        await asyncio.sleep(0.2)
    raise AssertionError(f"never reached: {body}")


def joined(body: dict[str, Any]) -> bool:
    return body["status"] == "joined" and body["device"]["authorized"] is not None


async def provision(
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    key: str,
    **body: Any,
) -> tuple[str, str, str]:
    """Consent, claim and join; (user, request id, node id)."""
    user, hostname = new_user(), f"ap-{uuid.uuid4().hex[:8]}"
    request = await create_request(api, key, user, hostname=hostname, **body)
    await browser.consent(request["consent_url"], login="alice@example.com")
    device = await claim_and_join(api, sandbox, key, request["id"], hostname)
    return user, request["id"], device["nodeId"]


async def events(api: httpx.AsyncClient, key: str, user: str, name: str) -> list[dict[str, Any]]:
    params = {**EVERYTHING, "user_id": user, "event": name}
    trail = await api.get("/v1/audit", params=params, headers=bearer(key))
    logs: list[dict[str, Any]] = trail.json()["logs"]
    return logs


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
    [waiting] = await until_events(api, caller_key, user, "NODE.UPDATE")
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


async def until_events(
    api: httpx.AsyncClient, key: str, user: str, name: str
) -> list[dict[str, Any]]:
    for _ in range(150):
        found = await events(api, key, user, name)
        if found:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"no {name} event for {user}")
