"""The latency switch: Tailscale's answers delayed by a range of seconds, on chosen routes."""

import time

import httpx
import pytest

from sandbox.faults import switched_latency
from sandbox.state import SandboxState
from sandbox.switches import Latency
from tests.helpers.sandbox_flows import ADMIN, add_fault, client_token, set_switches
from tests.sandbox.conftest import SettingsFactory

DEVICES = "/api/v2/tailnet/-/devices"
KEYS = "/api/v2/tailnet/-/keys"


@pytest.mark.parametrize(
    ("routes", "route", "path", "delayed"),
    [
        ([], "token", "/api/v2/oauth/token", True),
        ([], "devices", DEVICES, True),
        ([], "authorize", "/a/oauth_authorize", True),
        ([], "join", "/sandbox/join", False),
        (["join"], "join", "/sandbox/join", True),
        (["token", "keys"], "devices", DEVICES, False),
        (["token", "keys"], "keys", KEYS, True),
        (["/api/v2/tailnet/"], "keys", KEYS, True),
        (["/api/v2/tailnet/"], "token", "/api/v2/oauth/token", False),
    ],
)
def test_which_routes_are_delayed(
    state: SandboxState, routes: list[str], route: str, path: str, delayed: bool
) -> None:
    state.switches.latency = Latency(2.0, 4.0, routes)
    delays = [switched_latency(state, route, path) for _ in range(50)]
    if delayed:
        assert all(2.0 <= delay <= 4.0 for delay in delays)
        assert len(set(delays)) > 1
    else:
        assert set(delays) == {0.0}


def test_no_delay_while_off(state: SandboxState) -> None:
    assert state.switches.latency is None
    assert switched_latency(state, "token", "/api/v2/oauth/token") == 0.0


async def test_set_and_cleared_through_the_control_api(api: httpx.AsyncClient) -> None:
    # A whole second, so a slow machine cannot blur "delayed" and "not delayed".
    latency = {"min_seconds": 1.0, "max_seconds": 1.0, "routes": ["devices"]}
    assert (await set_switches(api, latency=latency))["latency"] == latency
    started = time.monotonic()
    assert (await api.get(KEYS, headers=ADMIN)).status_code == 200
    assert time.monotonic() - started < 0.5
    started = time.monotonic()
    assert (await api.get(DEVICES, headers=ADMIN)).status_code == 200
    assert time.monotonic() - started >= 1.0
    assert (await set_switches(api, latency=None))["latency"] is None
    started = time.monotonic()
    assert (await api.get(DEVICES, headers=ADMIN)).status_code == 200
    assert time.monotonic() - started < 0.5


async def test_latency_adds_to_a_fault(api: httpx.AsyncClient) -> None:
    await set_switches(api, latency={"min_seconds": 1.0, "max_seconds": 1.0})
    await add_fault(api, route="token", status=503, fail_times=1)
    started = time.monotonic()
    assert (await client_token(api)).status_code == 503
    assert time.monotonic() - started >= 1.0


def test_latency_from_the_settings(make_settings: SettingsFactory) -> None:
    state = SandboxState(make_settings(latency_seconds="2-4", latency_routes="token,keys"))
    assert state.switches.latency == Latency(2.0, 4.0, ["token", "keys"])
    fixed = SandboxState(make_settings(latency_seconds="3"))
    assert fixed.switches.latency == Latency(3.0, 3.0, [])
