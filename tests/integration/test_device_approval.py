"""A tailnet with device approval: what a caller sees of a device that joined and waits."""

from __future__ import annotations

from typing import Any

import httpx

from tests.helpers.browser import Browser
from tests.helpers.joined_devices import events, provision, until, until_events
from tests.helpers.stack import SANDBOX_ADMIN


def joined(body: dict[str, Any]) -> bool:
    return body["status"] == "joined" and body["device"]["authorized"] is not None


def approved(body: dict[str, Any]) -> bool:
    return body["device"] is not None and body["device"]["authorized"] is True


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
    body = await until(api, caller_key, request_id, approved)
    assert body["status"] == "joined"
    [event] = await until_events(api, caller_key, user, "NODE.APPROVE")
    assert "approved at Tailscale" in event["actionDetails"]


async def test_tsprov_approves_a_device_the_caller_asked_preauthorized(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, browser: Browser, caller_key: str
) -> None:
    await approval(sandbox)
    user, request_id, node_id = await provision(
        api, sandbox, browser, caller_key, preauthorized=True
    )
    body = await until(api, caller_key, request_id, approved)
    assert body["status"] == "joined"
    assert await upstream_authorized(sandbox, node_id)
    [event] = await until_events(api, caller_key, user, "NODE.APPROVE")
    assert "approved by tsprov" in event["actionDetails"]


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


async def test_an_observer_that_may_not_approve_leaves_the_device_waiting(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, browser: Browser, caller_key: str
) -> None:
    await approval(sandbox)
    read_only = {"observer_scopes": ["devices:core:read", "logs:configuration:read"]}
    assert (await sandbox.patch("/sandbox/switches", json=read_only)).status_code == 200
    user, request_id, node_id = await provision(
        api, sandbox, browser, caller_key, preauthorized=True
    )
    [waiting] = await until_events(api, caller_key, user, "NODE.UPDATE", "AUTHORIZED")
    assert waiting["error"].startswith("approval refused: 403")
    body = await until(api, caller_key, request_id, joined)
    assert (body["status"], body["device"]["authorized"]) == ("joined", False)
    assert not await upstream_authorized(sandbox, node_id)


async def test_an_approval_tailscale_could_not_answer_is_tried_again(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, browser: Browser, caller_key: str
) -> None:
    await approval(sandbox)
    # Every attempt of the first approval call (the client tries three times) fails.
    fault = {"route": "/api/v2/device/", "method": "POST", "status": 503, "fail_times": 3}
    assert (await sandbox.post("/sandbox/faults", json=fault)).status_code == 201
    user, request_id, node_id = await provision(
        api, sandbox, browser, caller_key, preauthorized=True
    )
    body = await until(api, caller_key, request_id, approved)
    assert body["status"] == "joined"
    assert await upstream_authorized(sandbox, node_id)
    [rule] = (await sandbox.get("/sandbox/faults")).json()["faults"]
    assert rule["fired"] == 3
    # Each outcome is audited once, on the tick that settled it, not once per try.
    [labelling] = await until_events(api, caller_key, user, "NODE.UPDATE", "ATTRIBUTES")
    assert labelling["error"].startswith("attribute not set: 403")
    assert len(await events(api, caller_key, user, "NODE.APPROVE")) == 1
    assert await events(api, caller_key, user, "NODE.UPDATE", "AUTHORIZED") == []


async def test_a_device_deleted_while_waiting_is_no_longer_followed(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, browser: Browser, caller_key: str
) -> None:
    await approval(sandbox)
    _, request_id, node_id = await provision(api, sandbox, browser, caller_key)
    await until(api, caller_key, request_id, joined)
    deleted = await sandbox.delete(f"/api/v2/device/{node_id}", headers=SANDBOX_ADMIN)
    assert deleted.status_code == 200
    body = await until(api, caller_key, request_id, lambda b: b["device"]["authorized"] is None)
    assert body["status"] == "joined"
