"""Fixtures for the Tailscale client and upstream caller tests: clients closed after each test."""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from service.tailscale.client import OAuthCredentials, TailscaleClient, TailscaleEndpoints
from service.tailscale.transport import RetryPolicy, UpstreamCaller
from tests.unit.tailscale_support import (
    API,
    APP_SECRET,
    NOW,
    OBSERVER_SECRET,
    Clock,
    Handler,
    Made,
    MakeClient,
    Sleeps,
    Upstream,
)
from tests.unit.upstream_support import MakeCaller


@pytest.fixture
async def make() -> AsyncIterator[MakeClient]:
    clients: list[TailscaleClient] = []

    def build(*, observer: bool = True, identity_field: str | None = None, **policy: Any) -> Made:
        upstream, sleeps, clock = Upstream(), Sleeps(), Clock()
        client = TailscaleClient(
            httpx.AsyncClient(transport=httpx.MockTransport(upstream)),
            TailscaleEndpoints("https://login.example/", API, "-"),
            OAuthCredentials("app-client-id", SecretStr(APP_SECRET)),
            OAuthCredentials("observer-id", SecretStr(OBSERVER_SECRET)) if observer else None,
            identity_field=identity_field,
            policy=RetryPolicy(**policy),
            sleep=sleeps,
            clock=clock,
            now=lambda: NOW,
            rng=random.Random(3),
        )
        clients.append(client)
        return Made(client, upstream, sleeps, clock)

    yield build
    for client in clients:
        await client.aclose()


@pytest.fixture
async def http_clients() -> AsyncIterator[list[httpx.AsyncClient]]:
    clients: list[httpx.AsyncClient] = []
    yield clients
    for client in clients:
        await client.aclose()


@pytest.fixture
def caller(http_clients: list[httpx.AsyncClient]) -> MakeCaller:
    def make(handler: Handler, **policy: Any) -> tuple[UpstreamCaller, Sleeps]:
        http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        http_clients.append(http)
        sleeps = Sleeps()
        upstream = UpstreamCaller(
            http,
            RetryPolicy(**policy),
            sleep=sleeps,
            clock=time.monotonic,
            now=lambda: NOW,
            rng=random.Random(7),
        )
        return upstream, sleeps

    return make
