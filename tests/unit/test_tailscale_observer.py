"""The observer's client-credentials token: shared, renewed before expiry, dropped if refused."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from service.tailscale.client import UpstreamRefused
from tests.unit.tailscale_support import (
    DEVICES_PATH,
    OBSERVER_TOKEN,
    TOKEN_PATH,
    MakeClient,
    device_json,
)

# --- the observer's token ----------------------------------------------------------------


async def test_observer_token_is_fetched_once_for_50_concurrent_calls(make: MakeClient) -> None:
    made = make()

    async def slow_token(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.05)
        return httpx.Response(200, json={"access_token": OBSERVER_TOKEN, "expires_in": 3600})

    made.upstream.answer(TOKEN_PATH, slow_token)
    made.upstream.answer(DEVICES_PATH, 200, body={"devices": [device_json()]})
    results = await asyncio.gather(*(made.client.list_devices() for _ in range(50)))
    assert all(len(devices) == 1 for devices in results)
    assert len(made.upstream.sent(TOKEN_PATH)) == 1
    devices = made.upstream.sent(DEVICES_PATH)
    assert len(devices) == 50
    assert {request.headers["authorization"] for request in devices} == {f"Bearer {OBSERVER_TOKEN}"}


async def test_observer_token_is_renewed_shortly_before_it_expires(make: MakeClient) -> None:
    made = make()
    made.upstream.answer(DEVICES_PATH, 200, body={"devices": []})
    await made.client.list_devices()
    made.clock.now += 3539  # 3600 s minus the one-minute margin, less one second
    await made.client.list_devices()
    assert len(made.upstream.sent(TOKEN_PATH)) == 1
    made.clock.now += 2
    await made.client.list_devices()
    assert len(made.upstream.sent(TOKEN_PATH)) == 2


async def test_a_rejected_observer_token_is_replaced_and_the_call_sent_once_more(
    make: MakeClient,
) -> None:
    made = make()
    made.upstream.answer(DEVICES_PATH, 401, 200, body={"devices": []})
    assert await made.client.list_devices() == []
    assert len(made.upstream.sent(DEVICES_PATH)) == 2
    assert len(made.upstream.sent(TOKEN_PATH)) == 2


async def test_a_fresh_observer_token_refused_again_is_not_retried_forever(
    make: MakeClient,
) -> None:
    made = make()
    made.upstream.answer(DEVICES_PATH, 401, 401, 401)
    with pytest.raises(UpstreamRefused):
        await made.client.list_devices()
    assert len(made.upstream.sent(DEVICES_PATH)) == 2


async def test_an_observer_token_that_expires_at_once_is_not_cached(make: MakeClient) -> None:
    made = make()
    made.upstream.answer(TOKEN_PATH, 200, body={"access_token": OBSERVER_TOKEN, "expires_in": 0})
    made.upstream.answer(DEVICES_PATH, 200, body={"devices": []})
    await made.client.list_devices()
    await made.client.list_devices()
    assert len(made.upstream.sent(TOKEN_PATH)) == 2
