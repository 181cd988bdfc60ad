"""The Tailscale client's circuit breaker: opening, failing fast, one half-open trial."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from service.tailscale.client import CircuitOpen, UpstreamUnavailable
from tests.unit.tailscale_support import DEVICES_PATH, MakeClient

# --- circuit breaker ---------------------------------------------------------------------


async def test_circuit_opens_fails_fast_then_half_opens(make: MakeClient) -> None:
    made = make(max_attempts=1, breaker_threshold=5, breaker_cooldown=30.0)
    made.upstream.answer(DEVICES_PATH, 500)
    for _ in range(5):
        with pytest.raises(UpstreamUnavailable) as failed:
            await made.client.list_devices()
        assert type(failed.value) is UpstreamUnavailable
    devices_before = len(made.upstream.sent(DEVICES_PATH))
    with pytest.raises(CircuitOpen) as opened:
        await made.client.list_devices()
    assert opened.value.retry_after == pytest.approx(30.0)
    assert opened.value.code == "upstream_unavailable"
    assert len(made.upstream.sent(DEVICES_PATH)) == devices_before

    made.clock.now += 31
    made.upstream.answer(DEVICES_PATH, 500)
    with pytest.raises(UpstreamUnavailable):
        await made.client.list_devices()  # the half-open trial fails: open again at once
    with pytest.raises(CircuitOpen):
        await made.client.list_devices()

    made.clock.now += 31
    made.upstream.answer(DEVICES_PATH, 200, body={"devices": []})
    assert await made.client.list_devices() == []  # the trial succeeds: closed
    assert await made.client.list_devices() == []
    assert len(made.upstream.sent(DEVICES_PATH)) == devices_before + 3


async def test_only_one_half_open_trial_runs_at_a_time(make: MakeClient) -> None:
    made = make(max_attempts=1, breaker_threshold=1, breaker_cooldown=10.0)
    made.upstream.answer(DEVICES_PATH, 503)
    with pytest.raises(UpstreamUnavailable):
        await made.client.list_devices()
    made.clock.now += 11
    release = asyncio.Event()

    async def held(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return httpx.Response(200, json={"devices": []})

    made.upstream.answer(DEVICES_PATH, held)
    trial = asyncio.create_task(made.client.list_devices())
    await asyncio.sleep(0.01)
    with pytest.raises(CircuitOpen):
        await made.client.list_devices()
    release.set()
    assert await trial == []
