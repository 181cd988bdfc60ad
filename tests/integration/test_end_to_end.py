"""The documented path, over real HTTP: ask, consent, claim, join, see it joined and audited."""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import bearer
from tests.helpers.browser import Browser, query_of
from tests.helpers.stack import SANDBOX_ADMIN
from tests.helpers.steps import claim_and_join, create_request, new_user
from tests.integration.conftest import Stack


async def test_consent_claim_join_gives_a_device_owned_by_the_consenting_user(
    stack: Stack,
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    caller_key: str,
) -> None:
    user = new_user()
    request = await create_request(api, caller_key, user, hostname="devbox-e2e")
    assert request["status"] == "awaiting_consent"

    callback = await browser.consent(request["consent_url"], login="bob@example.com")
    assert callback.status_code == 303
    assert callback.headers["location"] == "/done"
    assert callback.headers["cache-control"] == "no-store"
    assert callback.headers["referrer-policy"] == "no-referrer"

    ready = await api.get(f"/v1/provisioning-requests/{request['id']}", headers=bearer(caller_key))
    assert ready.json()["status"] == "ready"
    assert ready.json()["consent_url"] is None

    claim = await api.post(
        f"/v1/provisioning-requests/{request['id']}/claim", headers=bearer(caller_key)
    )
    assert claim.status_code == 200, claim.text
    assert claim.headers["cache-control"] == "no-store"
    auth_key = claim.json()["auth_key"]
    assert auth_key.startswith("tskey-auth-")
    assert claim.json()["tailscale_up"] == (
        f"tailscale up --auth-key={auth_key} --hostname=devbox-e2e"
    )

    second = await api.post(
        f"/v1/provisioning-requests/{request['id']}/claim", headers=bearer(caller_key)
    )
    assert second.status_code == 409
    assert second.json()["code"] == "already_claimed"

    joined = await sandbox.post(
        "/sandbox/join", json={"authKey": auth_key, "hostname": "devbox-e2e", "os": "linux"}
    )
    assert joined.status_code == 200, joined.text
    assert joined.json()["user"] == "bob@example.com"
    again = await sandbox.post(
        "/sandbox/join", json={"authKey": auth_key, "hostname": "other", "os": "linux"}
    )
    assert again.status_code == 400

    watched = await api.get(
        f"/v1/provisioning-requests/{request['id']}",
        params={"wait_seconds": 10},
        headers=bearer(caller_key),
    )
    body = watched.json()
    assert body["status"] == "joined"
    assert body["device"]["user"] == "bob@example.com"
    assert body["device"]["node_id"] == joined.json()["nodeId"]


async def test_the_audit_trail_tells_the_story_in_order(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, browser: Browser, caller_key: str
) -> None:
    user = new_user()
    request = await create_request(api, caller_key, user)
    await browser.consent(request["consent_url"], login="alice@example.com")
    await api.post(f"/v1/provisioning-requests/{request['id']}/claim", headers=bearer(caller_key))
    trail = await api.get(
        "/v1/audit",
        params={"start": "2000-01-01T00:00:00Z", "end": "2100-01-01T00:00:00Z", "user_id": user},
        headers=bearer(caller_key),
    )
    assert trail.status_code == 200, trail.text
    names = [f"{event['target']['type']}.{event['action']}" for event in trail.json()["logs"]]
    assert names == [
        "USER.CREATE",
        "PROVISIONING_REQUEST.CREATE",
        "GRANT.CREATE",
        "API_KEY.CREATE",
        "PROVISIONING_REQUEST.UPDATE",  # awaiting_consent → ready
        "GRANT.UPDATE",  # active → used
        "PROVISIONING_REQUEST.UPDATE",  # ready → claimed
    ]
    origins = {event["origin"] for event in trail.json()["logs"]}
    assert origins == {"CONFIG_API", "IDENTITY_PROVIDER"}


async def test_a_denied_consent_leaves_the_request_open(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, browser: Browser, caller_key: str
) -> None:
    request = await create_request(api, caller_key, new_user())
    page = await browser.consent(request["consent_url"], "alice@example.com", "deny")
    assert page.status_code == 200
    assert "declined" in page.text
    after = await api.get(f"/v1/provisioning-requests/{request['id']}", headers=bearer(caller_key))
    assert after.json()["status"] == "awaiting_consent"
    approved = await browser.consent(request["consent_url"], "alice@example.com")
    assert approved.status_code == 303


async def test_a_replayed_callback_is_refused_without_a_second_exchange(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, browser: Browser, caller_key: str
) -> None:
    request = await create_request(api, caller_key, new_user())
    authorize = await browser.open_consent(request["consent_url"])
    callback_url = await browser.decide(authorize, "alice@example.com")
    assert set(query_of(callback_url)) >= {"code", "state"}
    first = await browser.get(callback_url)
    assert first.status_code == 303
    await sandbox.delete("/sandbox/requests")
    replay = await browser.get(callback_url)
    assert replay.status_code == 400
    log = await sandbox.get("/sandbox/requests", params={"grant_type": "authorization_code"})
    assert log.json()["requests"] == []


async def test_devices_show_live_data_and_offboarding_deletes_them(
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    caller_key: str,
    admin_key: str,
) -> None:
    user = new_user()
    request = await create_request(api, caller_key, user, hostname="devbox-gone")
    await browser.consent(request["consent_url"], login="carol@example.com")
    joined = await claim_and_join(api, sandbox, caller_key, request["id"], "devbox-gone")
    await api.get(
        f"/v1/provisioning-requests/{request['id']}",
        params={"wait_seconds": 10},
        headers=bearer(caller_key),
    )
    devices = await api.get(f"/v1/users/{user}/devices", headers=bearer(caller_key))
    [device] = devices.json()["items"]
    assert device["node_id"] == joined["nodeId"]
    assert device["live"]["user"] == "carol@example.com"
    assert device["live"]["os"] == "linux"

    summary = await api.delete(
        f"/v1/users/{user}/grants", params={"delete_devices": "true"}, headers=bearer(admin_key)
    )
    assert summary.json()["devices_deleted"] == [joined["nodeId"]]
    gone = await sandbox.get("/api/v2/tailnet/-/devices", headers=SANDBOX_ADMIN)
    assert joined["nodeId"] not in [d["nodeId"] for d in gone.json()["devices"]]


async def test_our_node_create_links_to_tailscales_own_event(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, browser: Browser, caller_key: str
) -> None:
    user = new_user()
    request = await create_request(api, caller_key, user, hostname="devbox-linked")
    await browser.consent(request["consent_url"], login="alice@example.com")
    joined = await claim_and_join(api, sandbox, caller_key, request["id"], "devbox-linked")
    node_id = joined["nodeId"]
    upstream = await sandbox.get(
        "/api/v2/tailnet/-/logging/configuration",
        params={
            "start": "2000-01-01T00:00:00Z",
            "end": "2100-01-01T00:00:00Z",
            "event": "NODE.CREATE",
        },
        headers=SANDBOX_ADMIN,
    )
    [theirs] = [e for e in upstream.json()["logs"] if e["target"]["id"] == node_id]
    window = {
        "start": "2000-01-01T00:00:00Z",
        "end": "2100-01-01T00:00:00Z",
        "user_id": user,
        "event": "NODE.CREATE",
    }
    for _ in range(50):  # the link job runs every dozen background ticks
        ours = await api.get("/v1/audit", params=window, headers=bearer(caller_key))
        logs = ours.json()["logs"]
        if logs and "upstreamEventGroupID" in logs[0]:
            break
        await asyncio.sleep(0.2)
    assert logs[0]["target"]["id"] == node_id
    assert logs[0]["upstreamEventGroupID"] == theirs["eventGroupID"]
