"""The request log: what arrived, by route and grant type, with statuses and never a secret."""

import httpx

from tests.helpers.sandbox_flows import (
    ADMIN,
    APP_SECRET,
    OBSERVER_SECRET,
    add_fault,
    client_token,
    consent,
    consent_token,
    exchange,
    join,
    refresh,
)

DEVICES = "/api/v2/tailnet/-/devices"


async def test_request_log_counts_refreshes(api: httpx.AsyncClient) -> None:
    await api.patch("/sandbox/switches", json={"grant_mode": "reusable"})
    tokens = await consent_token(api, scope="auth_keys:create")
    await refresh(api, tokens["refresh_token"])
    log = (await api.get("/sandbox/requests", params={"grant_type": "refresh_token"})).json()
    assert len(log["requests"]) == 1
    (entry,) = log["requests"]
    assert set(entry) == {
        "id",
        "time",
        "method",
        "path",
        "route",
        "grant_type",
        "status",
        "lost",
        "fault_id",
    }
    assert entry["route"] == "token"
    assert entry["method"] == "POST"
    assert entry["status"] == 200
    assert entry["lost"] is False


async def test_request_log_records_routes_statuses_and_faults(api: httpx.AsyncClient) -> None:
    fault = await add_fault(api, route="devices", status=503, fail_times=1)
    await api.get(DEVICES, headers=ADMIN)
    await api.get(DEVICES, headers=ADMIN)
    await api.get("/sandbox/switches")
    entries = (await api.get("/sandbox/requests")).json()["requests"]
    assert [(e["route"], e["status"], e["fault_id"]) for e in entries] == [
        ("devices", 503, fault["id"]),
        ("devices", 200, None),
    ]
    only_authorize = await api.get("/sandbox/requests", params={"route": "authorize"})
    assert only_authorize.json() == {"requests": []}


async def test_request_log_holds_no_secrets(api: httpx.AsyncClient) -> None:
    query = await consent(api, state="secret-state-value")
    secret = (await exchange(api, query["code"])).json()["access_token"]
    await join(api, secret)
    text = (await api.get("/sandbox/requests")).text
    for value in (query["code"], "secret-state-value", secret, APP_SECRET, OBSERVER_SECRET):
        assert value not in text


async def test_clear_request_log(api: httpx.AsyncClient) -> None:
    await client_token(api)
    assert (await api.delete("/sandbox/requests")).status_code == 204
    assert (await api.get("/sandbox/requests")).json() == {"requests": []}
