"""The attribute that names a device's request at Tailscale, under each ``app_node_attributes``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import bearer
from tests.helpers.browser import Browser
from tests.helpers.joined_devices import provision, until_events
from tests.helpers.stack import SANDBOX_ADMIN, TEST_CREDENTIALS
from tests.integration.conftest import ATTRIBUTE

APP_PATH = f"/api/v2/tailnet/-/oauth-apps/{TEST_CREDENTIALS.app_id}"
POSTURE = "devices:posture_attributes"


async def allow_app_attribute(sandbox: httpx.AsyncClient) -> None:
    """The app may set ``ATTRIBUTE`` on the devices it provisions, as an admin would allow."""
    app: dict[str, Any] = (await sandbox.get(APP_PATH, headers=SANDBOX_ADMIN)).json()
    body = {
        "name": app["name"],
        "description": app["description"],
        "redirectURIs": app["redirectURIs"],
        "scopes": sorted({*app["scopes"], POSTURE}),
        "allowedNodeAttributes": [ATTRIBUTE],
    }
    answer = await sandbox.put(APP_PATH, json=body, headers=SANDBOX_ADMIN)
    assert answer.status_code == 200, answer.text


async def custom_attributes(sandbox: httpx.AsyncClient, node_id: str) -> dict[str, Any]:
    answer = await sandbox.get(f"/api/v2/device/{node_id}/attributes", headers=SANDBOX_ADMIN)
    return {k: v for k, v in answer.json()["attributes"].items() if k.startswith("custom:")}


@pytest.mark.parametrize("when", ["at_enrolment", "never"])
async def test_tsprov_names_the_request_on_the_device(
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    caller_key: str,
    when: str,
) -> None:
    scopes = ["devices:core", "logs:configuration:read", POSTURE]
    switches = {"app_node_attributes": when, "observer_scopes": scopes}
    assert (await sandbox.patch("/sandbox/switches", json=switches)).status_code == 200
    await allow_app_attribute(sandbox)
    user, request_id, node_id = await provision(api, sandbox, browser, caller_key)
    [labelled] = await until_events(api, caller_key, user, "NODE.UPDATE", "ATTRIBUTES")
    ours = f"{ATTRIBUTE}:{request_id.replace('-', '')}"
    assert (labelled["new"], labelled["error"]) == ({ours: True}, "")
    # Tailscale's own enrolment attribute says "an app made this"; only ours says which request.
    expected = {ours: True, ATTRIBUTE: True} if when == "at_enrolment" else {ours: True}
    assert await custom_attributes(sandbox, node_id) == expected


async def test_without_the_scope_the_refusal_is_audited_and_the_join_stands(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, browser: Browser, caller_key: str
) -> None:
    user, request_id, node_id = await provision(api, sandbox, browser, caller_key)
    [refused] = await until_events(api, caller_key, user, "NODE.UPDATE", "ATTRIBUTES")
    assert refused["error"].startswith("attribute not set: 403")
    assert await custom_attributes(sandbox, node_id) == {}
    request = await api.get(f"/v1/provisioning-requests/{request_id}", headers=bearer(caller_key))
    assert request.json()["status"] == "joined"
