"""Devices as Tailscale sends them today, and the observer's writes: approval, attributes."""

from __future__ import annotations

import json

import pytest

from service.tailscale.client import UpstreamRefused
from tests.unit.tailscale_support import DEVICES_PATH, OBSERVER_TOKEN, MakeClient, device_json

NODE = "nAbc123CNTRL"


async def test_the_corrected_device_shape_parses(make: MakeClient) -> None:
    connected = device_json(
        NODE,
        connectedToControl=True,
        authorized=False,
        tailnetLockKey="tlpub:0123abcd",
        tailnetLockError="",
        enabledRoutes=[],
        advertisedRoutes=None,
        clientConnectivity={
            "endpoints": ["192.0.2.1:41641"],
            "latency": {},
            "mappingVariesByDestIP": None,
            "clientSupports": {"hairPinning": None, "ipv6": True, "udp": True},
        },
        postureIdentity={"serialNumbers": None, "disabled": False},
        sshEnabled=False,
    )
    del connected["lastSeen"]  # left out while connected
    made = make()
    made.upstream.answer(DEVICES_PATH, 200, body={"devices": [connected]})
    [device] = await made.client.list_devices()
    assert (device.node_id, device.last_seen, device.authorized) == (NODE, None, False)


async def test_approving_posts_authorized_true_as_the_observer(make: MakeClient) -> None:
    made = make()
    path = f"/api/v2/device/{NODE}/authorized"
    made.upstream.answer(path, 200)
    await made.client.authorize_device(NODE)
    [request] = made.upstream.sent(path)
    assert request.method == "POST"
    assert request.headers["authorization"] == f"Bearer {OBSERVER_TOKEN}"
    assert json.loads(request.content) == {"authorized": True}


async def test_a_402_on_approval_is_a_refusal_with_its_status(make: MakeClient) -> None:
    made = make()
    path = f"/api/v2/device/{NODE}/authorized"
    made.upstream.answer(path, 402, body={"message": "device limit reached"})
    with pytest.raises(UpstreamRefused) as refused:
        await made.client.authorize_device(NODE)
    assert (refused.value.status, refused.value.message) == (402, "device limit reached")
    assert len(made.upstream.sent(path)) == 1


async def test_setting_an_attribute_posts_its_value(make: MakeClient) -> None:
    made = make()
    path = f"/api/v2/device/{NODE}/attributes/custom:tsprov_request:ab12"
    made.upstream.answer(path, 200, body={"attributes": {}, "expiries": {}})
    await made.client.set_device_attribute(NODE, "custom:tsprov_request:ab12", True)
    [request] = made.upstream.sent(path)
    assert (request.method, json.loads(request.content)) == ("POST", {"value": True})


@pytest.mark.parametrize("key", ["node:os", "custom:a/b", "custom:../x", "custom:", "custom:a-b"])
async def test_only_custom_attribute_names_reach_the_url(make: MakeClient, key: str) -> None:
    made = make()
    with pytest.raises(ValueError, match="custom attribute"):
        await made.client.set_device_attribute(NODE, key, True)
    assert made.upstream.requests == []
