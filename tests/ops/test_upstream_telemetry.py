"""Each Tailscale call is reported by endpoint template and outcome, and its failure lines
carry the request id of the request that made it."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime

import httpx
import pytest

from service.ops.metrics import Metrics
from service.ops.request_id import request_scope
from service.tailscale.telemetry import endpoint_of
from service.tailscale.transport import IDEMPOTENT, NON_IDEMPOTENT, RetryPolicy, UpstreamCaller
from service.tailscale.wire import UpstreamUnavailable
from tests.security.logcapture import ProductionLogs


def caller(handler: httpx.MockTransport, metrics: Metrics) -> UpstreamCaller:
    async def no_sleep(_seconds: float) -> None:
        await asyncio.sleep(0)

    return UpstreamCaller(
        httpx.AsyncClient(transport=handler),
        RetryPolicy(max_attempts=3),
        sleep=no_sleep,
        clock=lambda: 0.0,
        now=lambda: datetime.now(UTC),
        rng=random.Random(1),
        telemetry=metrics,
    )


API = "https://api.example/api/v2"


@pytest.mark.parametrize(
    ("method", "path", "endpoint"),
    [
        ("POST", "/tailnet/example.com/keys", "POST /api/v2/tailnet/{tailnet}/keys"),
        ("GET", "/device/nA1b2C3CNTRL?fields=all", "GET /api/v2/device/{deviceId}"),
        ("POST", "/oauth/token", "POST /api/v2/oauth/token"),
        ("GET", "/tailnet/-/logging/configuration",
         "GET /api/v2/tailnet/{tailnet}/logging/configuration"),
    ],
)  # fmt: skip
def test_endpoints_are_named_by_template_never_by_id(method: str, path: str, endpoint: str) -> None:
    assert endpoint_of(httpx.Request(method, API + path)) == endpoint


def test_calls_outside_the_api_are_named_other() -> None:
    assert endpoint_of(httpx.Request("GET", "https://api.example/elsewhere")) == "GET other"


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_a_retried_then_failed_call_is_counted_and_logged_with_its_request_id() -> None:
    metrics = Metrics()
    statuses = iter([503, 503, 503, 200])
    transport = httpx.MockTransport(lambda request: httpx.Response(next(statuses)))
    upstream = caller(transport, metrics)
    url = "https://api.example/api/v2/tailnet/-/devices"
    with ProductionLogs(log_format="json", only_this_thread=True) as logs, request_scope("r-up"):
        with pytest.raises(UpstreamUnavailable):
            await upstream.call(httpx.Request("GET", url), IDEMPOTENT)
        answer = await upstream.call(httpx.Request("GET", url), IDEMPOTENT)
    assert answer.status == 200
    endpoint = "GET /api/v2/tailnet/{tailnet}/devices"
    assert sample(metrics, "tsprov_upstream_retries_total", endpoint=endpoint) == 2
    assert sample(metrics, "tsprov_upstream_calls_total", endpoint=endpoint, outcome="failed") == 1
    assert sample(metrics, "tsprov_upstream_calls_total", endpoint=endpoint, outcome="ok") == 1
    assert sample(metrics, "tsprov_upstream_call_seconds_count", endpoint=endpoint) == 2
    failures = [json.loads(line) for line in logs.lines()]
    assert len(failures) == 3
    assert {entry["request_id"] for entry in failures} == {"r-up"}
    assert all(entry["logger"] == "tsprov.upstream" for entry in failures)


async def test_a_mint_whose_outcome_is_unknown_is_counted_apart() -> None:
    metrics = Metrics()
    transport = httpx.MockTransport(lambda request: httpx.Response(502))
    upstream = caller(transport, metrics)
    url = "https://api.example/api/v2/tailnet/-/keys"
    with pytest.raises(UpstreamUnavailable):
        await upstream.call(httpx.Request("POST", url), NON_IDEMPOTENT)
    endpoint = "POST /api/v2/tailnet/{tailnet}/keys"
    assert sample(metrics, "tsprov_upstream_calls_total", endpoint=endpoint, outcome="unknown") == 1
    assert sample(metrics, "tsprov_upstream_retries_total", endpoint=endpoint) == 0
