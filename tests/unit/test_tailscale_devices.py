"""The Tailscale client's device and configuration-log calls, made as the observer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service.tailscale.client import UpstreamUnavailable
from tests.unit.tailscale_support import (
    DEVICES_PATH,
    NOW,
    OBSERVER_SECRET,
    OBSERVER_TOKEN,
    MakeClient,
    device_json,
    form,
)

# --- wire format -------------------------------------------------------------------------


async def test_list_devices_uses_the_observer_token_and_parses_devices(make: MakeClient) -> None:
    made = make()
    never = device_json("nNever1CNTRL", lastSeen="0001-01-01T00:00:00Z", tags=["tag:ci"])
    made.upstream.answer(DEVICES_PATH, 200, body={"devices": [device_json(), never]})
    first, second = await made.client.list_devices()
    token_request, request = made.upstream.requests
    assert form(token_request) == {
        "grant_type": ["client_credentials"],
        "client_id": ["observer-id"],
        "client_secret": [OBSERVER_SECRET],
    }
    assert request.headers["authorization"] == f"Bearer {OBSERVER_TOKEN}"
    assert request.url.params["fields"] == "all"
    assert (first.node_id, first.legacy_id, first.user) == (
        "nAbc123CNTRL",
        "12345",
        "alice@example.com",
    )
    assert first.addresses == ["100.64.0.1", "fd7a:115c:a1e0::1"]
    assert first.created == datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    assert first.last_seen == datetime(2026, 6, 1, 11, 59, 0, 123456, tzinfo=UTC)
    assert (first.authorized, first.is_ephemeral) == (True, False)
    assert second.last_seen is None
    assert second.tags == ["tag:ci"]


@pytest.mark.parametrize(
    "devices", [{"devices": [{"id": "1"}]}, {"devices": [device_json(created="yesterday")]},
                {"devices": "none"}, {"devices": [device_json(tags="tag:x")]}]
)  # fmt: skip
async def test_malformed_devices_are_an_upstream_error(make: MakeClient, devices: Any) -> None:
    made = make()
    made.upstream.answer(DEVICES_PATH, 200, body=devices)
    with pytest.raises(UpstreamUnavailable):
        await made.client.list_devices()


async def test_delete_device_treats_404_as_already_gone(make: MakeClient) -> None:
    made = make()
    path = "/api/v2/device/nAbc123CNTRL"
    made.upstream.answer(path, 404, body={"message": "not found"})
    assert await made.client.delete_device("nAbc123CNTRL") is False
    made.upstream.answer(path, 200)
    assert await made.client.delete_device("nAbc123CNTRL") is True
    methods = [request.method for request in made.upstream.sent(path)]
    assert methods == ["DELETE", "DELETE"]


@pytest.mark.parametrize("device_id", ["..", "../tailnet/-/keys", "n1?all=true", "", "a/b", "n%2F"])
async def test_device_ids_cannot_walk_to_other_endpoints(make: MakeClient, device_id: str) -> None:
    made = make()
    with pytest.raises(ValueError, match="device id"):
        await made.client.delete_device(device_id)
    assert made.upstream.requests == []


async def test_configuration_log_sends_rfc3339_bounds_and_repeated_events(make: MakeClient) -> None:
    made = make()
    path = "/api/v2/tailnet/-/logging/configuration"
    entry = {"eventTime": "2026-06-01T11:00:00Z", "type": "CONFIG", "action": "CREATE"}
    made.upstream.answer(path, 200, body={"version": "1.1", "tailnet": "t", "logs": [entry]})
    start = datetime(2026, 6, 1, 13, 0, tzinfo=UTC) + timedelta(hours=-2)
    logs = await made.client.configuration_log(
        start=start.astimezone(), end=NOW, events=["NODE.CREATE", "API_KEY.REVOKE"]
    )
    assert logs == [entry]
    params = made.upstream.sent(path)[0].url.params
    assert params["start"] == "2026-06-01T11:00:00Z"
    assert params["end"] == "2026-06-01T12:00:00Z"
    assert params.get_list("event") == ["NODE.CREATE", "API_KEY.REVOKE"]
    made.upstream.answer(path, 200, body={"logs": None})
    assert await made.client.configuration_log(start=start, end=NOW) == []
    assert "event" not in made.upstream.sent(path)[1].url.params


async def test_observer_calls_need_an_observer(make: MakeClient) -> None:
    made = make(observer=False)
    assert made.client.has_observer is False
    with pytest.raises(RuntimeError):
        await made.client.list_devices()
    assert make().client.has_observer is True
