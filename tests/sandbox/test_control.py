"""The control API: switches, fault rules, the request log, the clock and reset."""

import json
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import httpx
import pytest

from sandbox.state import SandboxState
from tests.helpers.sandbox_flows import (
    ADMIN,
    APP_ID,
    APP_SECRET,
    TOKEN,
    add_fault,
    admin_key,
    client_token,
    consent,
    exchange,
    join,
    refresh,
)

SWITCHES = {
    "require_pkce": False,
    "grant_mode": "once",
    "access_token_ttl": 3600,
    "send_iss": False,
    "auto_approve": None,
    "identity_field": None,
    "forced_oauth_error": None,
    "device_approval": False,
    "device_quota_exceeded": False,
    "token_error_shape": "rfc6749",
    "consent_key_user_id": "present",
    "consent_key_log": "user",
    "observer_user_key_access": "read",
    "observer_scopes": ["devices:core", "logs:configuration:read"],
    "oauth_app_events": False,
    "node_create_key_id": True,
    "app_node_attributes": "at_enrolment",
    "latency": None,
    "rotate_refresh_tokens": True,
}
DEVICES = "/api/v2/tailnet/-/devices"


async def test_health(api: httpx.AsyncClient) -> None:
    response = await api.get("/sandbox/health")
    assert response.status_code == 200


async def test_switches_start_from_settings(api: httpx.AsyncClient) -> None:
    assert (await api.get("/sandbox/switches")).json() == SWITCHES


async def test_patch_changes_only_what_it_names(api: httpx.AsyncClient) -> None:
    patch = {"require_pkce": True, "send_iss": True, "forced_oauth_error": "invalid_grant"}
    response = await api.patch("/sandbox/switches", json=patch)
    assert response.status_code == 200
    assert response.json() == {**SWITCHES, **patch}
    cleared = await api.patch("/sandbox/switches", json={"forced_oauth_error": None})
    assert cleared.json()["forced_oauth_error"] is None
    assert cleared.json()["require_pkce"] is True


@pytest.mark.parametrize(
    "patch",
    [
        {"unknown_switch": True},
        {"grant_mode": "forever"},
        {"access_token_ttl": 0},
        {"auto_approve": "mallory@example.com"},
        {"identity_field": "access_token"},
        {"forced_oauth_error": "server_error"},
        {"require_pkce": None},
        {"token_error_shape": "xml"},
        {"consent_key_user_id": "sometimes"},
        {"consent_key_log": "maybe"},
        {"observer_user_key_access": "peek"},
        {"app_node_attributes": "later"},
        {"observer_scopes": "devices:core"},
        {"latency": {"min_seconds": 3, "max_seconds": 2}},
        {"latency": {"min_seconds": 1, "max_seconds": 2, "routes": ["nowhere"]}},
        {"latency": {"min_seconds": -1, "max_seconds": 2}},
    ],
)
async def test_bad_patches_are_400(api: httpx.AsyncClient, patch: dict[str, Any]) -> None:
    response = await api.patch("/sandbox/switches", json=patch)
    assert response.status_code == 400
    assert set(response.json()) == {"message"}


async def test_patched_auto_approve_and_empty_string_turns_it_off(
    api: httpx.AsyncClient,
) -> None:
    await api.patch("/sandbox/switches", json={"auto_approve": "bob@example.com"})
    params = {
        "client_id": APP_ID,
        "redirect_uri": "http://127.0.0.1:8000/callback",
        "response_type": "code",
    }
    assert (await api.get("/a/oauth_authorize", params=params)).status_code == 302
    await api.patch("/sandbox/switches", json={"auto_approve": ""})
    assert (await api.get("/a/oauth_authorize", params=params)).status_code == 200


async def test_failures_n_times_then_success(api: httpx.AsyncClient) -> None:
    await add_fault(api, route="token", status=503, fail_times=2)
    statuses = [(await client_token(api)).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    failed = await add_fault(api, route="token", status=500, fail_times=1)
    response = await client_token(api)
    assert response.status_code == 500
    assert set(response.json()) == {"message"}
    faults = (await api.get("/sandbox/faults")).json()["faults"]
    assert [fault["fired"] for fault in faults] == [2, 1]
    assert faults[1]["id"] == failed["id"]


async def test_429_with_retry_after_seconds(api: httpx.AsyncClient) -> None:
    await add_fault(api, route="token", status=429, retry_after="7", fail_times=1)
    response = await client_token(api)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"


async def test_429_with_retry_after_http_date(api: httpx.AsyncClient) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    await add_fault(api, route="keys", status=429, retry_after=when)
    response = await api.get("/api/v2/tailnet/-/keys", headers=ADMIN)
    assert response.status_code == 429
    assert parsedate_to_datetime(response.headers["retry-after"]) > datetime.now(UTC)


async def test_garbage_retry_after_is_sent_raw(api: httpx.AsyncClient) -> None:
    await add_fault(api, route="token", status=429, retry_after="soon-ish")
    assert (await client_token(api)).headers["retry-after"] == "soon-ish"


async def test_fault_targets_one_grant_type(api: httpx.AsyncClient) -> None:
    await add_fault(api, route="token", grant_type="refresh_token", status=502)
    assert (await client_token(api)).status_code == 200
    response = await refresh(api, "whatever")
    assert response.status_code == 502


async def test_fault_targets_a_method_and_a_path_prefix(api: httpx.AsyncClient) -> None:
    await add_fault(api, route="/api/v2/tailnet/-/keys", method="post", status=504)
    assert (await api.get("/api/v2/tailnet/-/keys", headers=ADMIN)).status_code == 200
    body: dict[str, Any] = {"capabilities": {"devices": {"create": {}}}}
    response = await api.post("/api/v2/tailnet/-/keys", json=body, headers=ADMIN)
    assert response.status_code == 504


async def test_body_override_keeps_the_work_and_the_status(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    await add_fault(api, route="keys", method="POST", body="{not json", fail_times=1)
    body: dict[str, Any] = {"capabilities": {"devices": {"create": {}}}}
    response = await api.post("/api/v2/tailnet/-/keys", json=body, headers=ADMIN)
    assert response.status_code == 200
    assert response.text == "{not json"
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert len(state.keys) == 1


async def test_oversized_injected_body(api: httpx.AsyncClient) -> None:
    await add_fault(api, route="devices", status=200, body="x" * 2_000_000)
    response = await api.get(DEVICES, headers=ADMIN)
    assert len(response.content) == 2_000_000


async def test_latency_on_one_route_only(api: httpx.AsyncClient) -> None:
    # A whole second of latency, so a slow machine cannot blur "delayed" and "not delayed".
    await add_fault(api, route="devices", latency_seconds=1.0)
    started = time.monotonic()
    assert (await api.get("/api/v2/tailnet/-/keys", headers=ADMIN)).status_code == 200
    assert time.monotonic() - started < 0.5
    started = time.monotonic()
    assert (await api.get(DEVICES, headers=ADMIN)).status_code == 200
    assert time.monotonic() - started >= 1.0


async def test_lost_response_in_process_raises_but_does_the_work(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    await add_fault(api, route="token", lost_response=True, fail_times=1)
    with pytest.raises(ConnectionAbortedError):
        await client_token(api)
    assert len(state.access_tokens) == 2


@pytest.mark.parametrize(
    "rule",
    [
        {"route": "token"},
        {"route": "nowhere", "status": 500},
        {"route": "token", "status": 500, "lost_response": True},
        {"route": "token", "status": 99},
        {"route": "token", "status": 429, "retry_after": "7\r\nX-Evil: 1"},
        {"route": "token", "status": 500, "fail_times": 0},
        {"route": "token", "status": 500, "color": "red"},
    ],
)
async def test_bad_fault_rules_are_400(api: httpx.AsyncClient, rule: dict[str, Any]) -> None:
    response = await api.post("/sandbox/faults", json=rule)
    assert response.status_code == 400


async def test_delete_faults(api: httpx.AsyncClient) -> None:
    await add_fault(api, route="token", status=500)
    assert (await api.delete("/sandbox/faults")).status_code == 204
    assert (await client_token(api)).status_code == 200
    assert (await api.get("/sandbox/faults")).json() == {"faults": []}


async def test_clock_advances_on_request(api: httpx.AsyncClient) -> None:
    before = datetime.fromisoformat((await api.get("/sandbox/clock")).json()["now"])
    after = datetime.fromisoformat(
        (await api.post("/sandbox/clock", json={"advance_seconds": 3600})).json()["now"]
    )
    assert after - before >= timedelta(seconds=3600)
    assert (await api.post("/sandbox/clock", json={"advance_seconds": -5})).status_code == 400


async def test_reset_restores_the_seeded_tailnet(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    patch = {
        "send_iss": True,
        "grant_mode": "reusable",
        "observer_scopes": ["users:read"],
        "latency": {"min_seconds": 0, "max_seconds": 0},
    }
    await api.patch("/sandbox/switches", json=patch)
    await add_fault(api, route="devices", status=500)
    await join(api, (await admin_key(api))["key"])
    await api.delete(f"/api/v2/tailnet/-/oauth-apps/{APP_ID}", headers=ADMIN)
    state.clock.advance(86400)
    assert (await api.post("/sandbox/reset")).status_code == 204
    assert (await api.get("/sandbox/requests")).json() == {"requests": []}
    assert (await api.get("/sandbox/switches")).json() == SWITCHES
    assert (await api.get("/sandbox/faults")).json() == {"faults": []}
    assert (await api.get(DEVICES, headers=ADMIN)).json() == {"devices": []}
    assert (await api.get("/api/v2/tailnet/-/keys", headers=ADMIN)).json() == {"keys": []}
    apps = (await api.get("/api/v2/tailnet/-/oauth-apps", headers=ADMIN)).json()["oauthApps"]
    assert [app["id"] for app in apps] == [APP_ID]
    assert abs(state.clock.now() - datetime.now(UTC)) < timedelta(seconds=5)


async def test_control_api_is_in_the_docs(api: httpx.AsyncClient) -> None:
    paths = (await api.get("/openapi.json")).json()["paths"]
    for path in (
        "/sandbox/switches",
        "/sandbox/faults",
        "/sandbox/requests",
        "/sandbox/reset",
        "/sandbox/join",
        "/sandbox/health",
        "/sandbox/clock",
    ):
        assert path in paths
    assert (await api.get("/docs")).status_code == 200


async def test_forced_error_through_the_control_api(api: httpx.AsyncClient) -> None:
    await api.patch("/sandbox/switches", json={"forced_oauth_error": "invalid_client"})
    code = (await consent(api))["code"]
    response = await exchange(api, code)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert (await client_token(api)).status_code == 401
    await api.patch("/sandbox/switches", json={"forced_oauth_error": "invalid_grant"})
    assert (await client_token(api)).status_code == 200
    assert (await exchange(api, code)).json()["error"] == "invalid_grant"
    assert (await api.post(TOKEN, data={}, auth=(APP_ID, APP_SECRET))).status_code == 400
