"""Device approval: the tailnet setting, devices that wait, approving them, and the 402."""

import httpx
import pytest

from tests.helpers.sandbox_flows import (
    ADMIN,
    admin_key,
    audit_events,
    bearer,
    consent_token,
    event_names,
    join,
    observer_token,
    set_switches,
)

SETTINGS = "/api/v2/tailnet/-/settings"


def authorized_path(device: dict[str, str]) -> str:
    return f"/api/v2/device/{device['nodeId']}/authorized"


async def read_device(api: httpx.AsyncClient, device: dict[str, str]) -> dict[str, object]:
    response = await api.get(f"/api/v2/device/{device['nodeId']}", headers=ADMIN)
    body: dict[str, object] = response.json()
    return body


@pytest.mark.parametrize("approval", [True, False])
async def test_settings_show_the_approval_switch(api: httpx.AsyncClient, approval: bool) -> None:
    await set_switches(api, device_approval=approval)
    response = await api.get(SETTINGS, headers=ADMIN)
    assert response.status_code == 200
    body = response.json()
    assert body["devicesApprovalOn"] is approval
    assert body["devicesKeyDurationDays"] == 180
    assert {"aclsExternallyManagedOn", "networkFlowLoggingOn", "usersApprovalOn"} <= set(body)


async def test_settings_need_feature_settings_read(api: httpx.AsyncClient) -> None:
    assert (await api.get(SETTINGS, headers=bearer(await observer_token(api)))).status_code == 403
    await set_switches(api, observer_scopes=["devices:core", "feature_settings:read"])
    body = (await api.get(SETTINGS, headers=bearer(await observer_token(api)))).json()
    assert body["devicesApprovalOn"] is False
    # Settings another scope governs stay hidden from this caller.
    assert "networkFlowLoggingOn" not in body
    assert "aclsExternalLink" not in body


@pytest.mark.parametrize("approval", [True, False])
async def test_a_consent_device_waits_only_under_approval(
    api: httpx.AsyncClient, approval: bool
) -> None:
    await set_switches(api, device_approval=approval)
    device = (await join(api, (await consent_token(api))["access_token"])).json()
    assert device["authorized"] is not approval


async def test_approving_a_waiting_device(api: httpx.AsyncClient) -> None:
    await set_switches(api, device_approval=True)
    device = (await join(api, (await admin_key(api))["key"])).json()
    headers = bearer(await observer_token(api))
    response = await api.post(authorized_path(device), json={"authorized": True}, headers=headers)
    assert response.status_code == 200
    assert (await read_device(api, device))["authorized"] is True
    (event,) = await audit_events(api, event="NODE.APPROVE")
    assert event["target"]["id"] == device["nodeId"]
    assert event["actor"]["type"] == "OAUTH_CLIENT"
    assert event["new"] == {"authorized": True}


async def test_deauthorizing_a_device(api: httpx.AsyncClient) -> None:
    device = (await join(api, (await admin_key(api))["key"])).json()
    response = await api.post(authorized_path(device), json={"authorized": False}, headers=ADMIN)
    assert response.status_code == 200
    assert (await read_device(api, device))["authorized"] is False
    assert event_names(await audit_events(api, event="NODE.REVOKE")) == ["NODE.REVOKE"]


@pytest.mark.parametrize("exceeded", [True, False])
async def test_quota_switch_makes_approval_402(api: httpx.AsyncClient, exceeded: bool) -> None:
    await set_switches(api, device_approval=True, device_quota_exceeded=exceeded)
    device = (await join(api, (await admin_key(api))["key"])).json()
    response = await api.post(authorized_path(device), json={"authorized": True}, headers=ADMIN)
    if exceeded:
        assert response.status_code == 402
        assert set(response.json()) == {"message"}
    else:
        assert response.status_code == 200
    assert (await read_device(api, device))["authorized"] is not exceeded


async def test_approval_needs_devices_core(api: httpx.AsyncClient) -> None:
    device = (await join(api, (await admin_key(api))["key"])).json()
    reader = bearer(await observer_token(api, scope="devices:core:read"))
    response = await api.post(authorized_path(device), json={"authorized": True}, headers=reader)
    assert response.status_code == 403


@pytest.mark.parametrize("body", [{}, {"authorized": "soon"}])
async def test_approval_body_is_checked(api: httpx.AsyncClient, body: dict[str, str]) -> None:
    device = (await join(api, (await admin_key(api))["key"])).json()
    response = await api.post(authorized_path(device), json=body, headers=ADMIN)
    assert response.status_code == 400
    assert set(response.json()) == {"message"}


async def test_approving_an_unknown_device_is_404(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/api/v2/device/nNope/authorized", json={"authorized": True}, headers=ADMIN
    )
    assert response.status_code == 404
