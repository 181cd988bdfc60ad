"""Node attributes: reading, setting and deleting them, and an app's allowedNodeAttributes."""

from datetime import timedelta
from typing import Any

import httpx
import pytest

from sandbox.state import SandboxState
from tests.helpers.sandbox_flows import (
    ADMIN,
    APP_ID,
    REDIRECT_URI,
    admin_key,
    bearer,
    consent_token,
    join,
    mint_with,
    observer_token,
    set_switches,
)

PROVISIONED = "custom:provisioned_by_app"


async def new_device(api: httpx.AsyncClient, hostname: str = "box") -> str:
    device = (await join(api, (await admin_key(api))["key"], hostname=hostname)).json()
    node_id: str = device["nodeId"]
    return node_id


def path(node_id: str, key: str = "") -> str:
    return f"/api/v2/device/{node_id}/attributes" + (f"/{key}" if key else "")


async def attributes(api: httpx.AsyncClient, node_id: str) -> dict[str, Any]:
    response = await api.get(path(node_id), headers=ADMIN)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def put(api: httpx.AsyncClient, node_id: str, key: str, **body: Any) -> httpx.Response:
    return await api.post(path(node_id, key), json=body, headers=ADMIN)


async def test_a_new_device_has_only_built_in_attributes(api: httpx.AsyncClient) -> None:
    body = await attributes(api, await new_device(api))
    assert set(body) == {"attributes", "expiries"}
    assert body["attributes"]["node:os"] == "linux"
    assert body["attributes"]["node:tsVersion"] == "1.86.2"
    assert not [name for name in body["attributes"] if name.startswith("custom:")]
    assert body["expiries"] == {}


async def test_set_update_and_delete(api: httpx.AsyncClient) -> None:
    node = await new_device(api)
    created = await put(api, node, "custom:team", value="blue", comment="first")
    assert created.status_code == 200
    assert created.json()["attributes"]["custom:team"] == "blue"
    await put(api, node, "custom:team", value="red")
    assert (await attributes(api, node))["attributes"]["custom:team"] == "red"
    assert (await api.delete(path(node, "custom:team"), headers=ADMIN)).status_code == 200
    assert "custom:team" not in (await attributes(api, node))["attributes"]
    assert (await api.delete(path(node, "custom:team"), headers=ADMIN)).status_code == 200


@pytest.mark.parametrize("value", ["blue_team.2", 42, -(2**53 - 1), True, False, "x" * 50])
async def test_accepted_values(api: httpx.AsyncClient, value: object) -> None:
    response = await put(api, await new_device(api), "custom:v", value=value)
    assert response.status_code == 200, response.text
    assert response.json()["attributes"]["custom:v"] == value


@pytest.mark.parametrize("value", ["has space", "dash-ed", "x" * 51, 1.5, 2**53, None, [1]])
async def test_refused_values(api: httpx.AsyncClient, value: object) -> None:
    response = await put(api, await new_device(api), "custom:v", value=value)
    assert response.status_code == 400
    assert set(response.json()) == {"message"}


@pytest.mark.parametrize(
    "key", ["team", "node:os", "custom:", "custom:dash-ed", "custom:" + "x" * 122]
)
async def test_refused_keys(api: httpx.AsyncClient, key: str) -> None:
    node = await new_device(api)
    assert (await put(api, node, key, value="x")).status_code == 400
    assert (await api.delete(path(node, key), headers=ADMIN)).status_code == 400


async def test_one_key_one_type_and_one_spelling(api: httpx.AsyncClient) -> None:
    first, second = await new_device(api, "one"), await new_device(api, "two")
    assert (await put(api, first, "custom:score", value=80)).status_code == 200
    assert (await put(api, second, "custom:score", value=90)).status_code == 200
    assert (await put(api, second, "custom:score", value="high")).status_code == 400
    assert (await put(api, second, "custom:Score", value=70)).status_code == 400


async def test_an_attribute_expires(api: httpx.AsyncClient, state: SandboxState) -> None:
    node = await new_device(api)
    expiry = (state.clock.now() + timedelta(hours=1)).isoformat()
    response = await put(api, node, "custom:temporary", value=True, expiry=expiry)
    assert set(response.json()["expiries"]) == {"custom:temporary"}
    state.clock.advance(3601)
    body = await attributes(api, node)
    assert "custom:temporary" not in body["attributes"]
    assert body["expiries"] == {}


async def test_scopes_and_unknown_devices(api: httpx.AsyncClient) -> None:
    node = await new_device(api)
    headers = bearer(await observer_token(api))
    assert (await api.get(path(node), headers=headers)).status_code == 403
    await set_switches(api, observer_scopes=["devices:core", "devices:posture_attributes"])
    writer = bearer(await observer_token(api))
    response = await api.post(path(node, "custom:x"), json={"value": 1}, headers=writer)
    assert response.status_code == 200
    assert (await api.get(path("nNope"), headers=ADMIN)).status_code == 404


async def app_with_attributes(api: httpx.AsyncClient, scope: str) -> None:
    body = {
        "name": "tsprov",
        "redirectURIs": [REDIRECT_URI],
        "scopes": [scope, "devices:posture_attributes"],
        "allowedNodeAttributes": [PROVISIONED],
    }
    response = await api.put(f"/api/v2/tailnet/-/oauth-apps/{APP_ID}", json=body, headers=ADMIN)
    assert response.status_code == 200, response.text


async def consent_device(api: httpx.AsyncClient, mode: str) -> str:
    if mode == "once":
        secret = (await consent_token(api))["access_token"]
    else:
        await set_switches(api, grant_mode="reusable")
        token = (await consent_token(api, scope="auth_keys:create"))["access_token"]
        secret = (await mint_with(api, token)).json()["key"]
    await app_with_attributes(
        api, "auth_keys:create:once" if mode == "once" else "auth_keys:create"
    )
    node_id: str = (await join(api, secret)).json()["nodeId"]
    return node_id


@pytest.mark.parametrize("mode", ["once", "reusable"])
@pytest.mark.parametrize("when", ["at_enrolment", "never"])
async def test_app_attributes_switch(api: httpx.AsyncClient, mode: str, when: str) -> None:
    await set_switches(api, app_node_attributes=when)
    node = await consent_device(api, mode)
    held = (await attributes(api, node))["attributes"]
    assert held.get(PROVISIONED) is (True if when == "at_enrolment" else None)


async def test_app_attributes_only_reach_the_apps_devices(api: httpx.AsyncClient) -> None:
    await app_with_attributes(api, "auth_keys:create:once")
    node = await new_device(api)
    assert PROVISIONED not in (await attributes(api, node))["attributes"]
