"""Shared helpers for the upstream caller tests: a scripted transport and a one-call shortcut."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from service.tailscale.transport import Replay, UpstreamCaller
from tests.unit.tailscale_support import Sleeps

URL = "https://api.example/api/v2/tailnet/-/devices?fields=all"
Step = int | type[httpx.TransportError]


class Script:
    """A MockTransport handler playing one step per request: a status or an exception type."""

    def __init__(self, *steps: Step, headers: dict[str, str] | None = None) -> None:
        self.steps = list(steps)
        self.headers = headers or {}
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, int):
            return httpx.Response(step, json={"ok": step}, headers=self.headers)
        raise step("simulated", request=request)


MakeCaller = Callable[..., tuple[UpstreamCaller, Sleeps]]


async def call(upstream: UpstreamCaller, replay: Replay, method: str = "GET") -> int:
    response = await upstream.call(httpx.Request(method, URL), replay)
    return response.status
