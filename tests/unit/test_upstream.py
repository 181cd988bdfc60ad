"""Retry rules, backoff, Retry-After, the circuit breaker and bounded reads, in isolation."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.tailscale_wire import BodyTooLarge, CircuitOpen, OutcomeUnknown, UpstreamUnavailable
from service.upstream import (
    IDEMPOTENT,
    NON_IDEMPOTENT,
    REFRESH,
    SINGLE_USE,
    CircuitBreaker,
    Replay,
    RetryPolicy,
    UpstreamCaller,
    backoff_delay,
    parse_retry_after,
    read_bounded,
)

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
URL = "https://api.example/api/v2/tailnet/-/devices?fields=all"
Handler = Callable[[httpx.Request], Coroutine[Any, Any, httpx.Response]]
Step = int | type[httpx.TransportError]


class Sleeps:
    """Records requested sleeps instead of sleeping."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


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


@pytest.fixture
async def http_clients() -> AsyncIterator[list[httpx.AsyncClient]]:
    clients: list[httpx.AsyncClient] = []
    yield clients
    for client in clients:
        await client.aclose()


MakeCaller = Callable[..., tuple[UpstreamCaller, Sleeps]]


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


async def call(upstream: UpstreamCaller, replay: Replay, method: str = "GET") -> int:
    response = await upstream.call(httpx.Request(method, URL), replay)
    return response.status


# --- Retry-After -------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "seconds"), [("7", 7.0), (" 120 ", 120.0), ("0", 0.0)])
def test_retry_after_delta_seconds(value: str, seconds: float) -> None:
    assert parse_retry_after(value, NOW) == seconds


def test_retry_after_http_date_in_the_future_and_past() -> None:
    later = format_datetime(NOW + timedelta(seconds=42), usegmt=True)
    earlier = format_datetime(NOW - timedelta(seconds=42), usegmt=True)
    assert parse_retry_after(later, NOW) == 42.0
    assert parse_retry_after(earlier, NOW) == 0.0


@pytest.mark.parametrize(
    "value", [None, "", "soon", "-5", "1.5", "7 days", "Mon, 99 Foo 2020", "9" * 40]
)
def test_retry_after_garbage_is_ignored(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None


# --- backoff -----------------------------------------------------------------------------


@given(failures=st.integers(min_value=1, max_value=200), seed=st.integers(0, 2**32))
def test_backoff_stays_within_full_jitter_bounds(failures: int, seed: int) -> None:
    policy = RetryPolicy()
    delay = backoff_delay(failures, policy, random.Random(seed))
    assert 0.0 <= delay <= min(policy.backoff_cap, policy.backoff_base * 2 ** (failures - 1))


def test_backoff_ceiling_doubles_then_caps() -> None:
    class Highest(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    policy = RetryPolicy(backoff_base=0.2, backoff_cap=5.0)
    ceilings = [backoff_delay(n, policy, Highest()) for n in range(1, 9)]
    assert ceilings == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0])


def test_backoff_is_jittered() -> None:
    rng = random.Random(1)
    delays = {backoff_delay(3, RetryPolicy(), rng) for _ in range(20)}
    assert len(delays) == 20


# --- circuit breaker ---------------------------------------------------------------------


def test_breaker_opens_fails_fast_then_lets_one_trial_through() -> None:
    clock = Clock()
    breaker = CircuitBreaker(RetryPolicy(breaker_threshold=3, breaker_cooldown=30.0), clock)
    for _ in range(3):
        assert breaker.admit() is False
        breaker.record(failed=True)
    clock.now += 10
    with pytest.raises(CircuitOpen) as opened:
        breaker.admit()
    assert opened.value.retry_after == pytest.approx(20.0)
    clock.now += 20
    assert breaker.admit() is True
    with pytest.raises(CircuitOpen):
        breaker.admit()  # only one trial at a time
    breaker.release(True)
    breaker.record(failed=False)
    assert breaker.admit() is False


def test_breaker_reopens_after_a_failed_trial_and_success_resets_the_count() -> None:
    clock = Clock()
    breaker = CircuitBreaker(RetryPolicy(breaker_threshold=2, breaker_cooldown=5.0), clock)
    breaker.record(failed=True)
    breaker.record(failed=False)
    breaker.record(failed=True)
    assert breaker.admit() is False  # the success in between reset the count
    breaker.record(failed=True)
    clock.now += 5
    assert breaker.admit() is True
    breaker.release(True)
    breaker.record(failed=True)
    with pytest.raises(CircuitOpen) as reopened:
        breaker.admit()
    assert reopened.value.retry_after == pytest.approx(5.0)


# --- bounded reads -----------------------------------------------------------------------


async def _stream(size: int, *, declare: bool) -> httpx.Response:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(size // 1024):
            yield b"x" * 1024

    headers = {"content-length": str(size)} if declare else {}
    return httpx.Response(200, content=chunks(), headers=headers)


async def test_read_bounded_accepts_exactly_the_limit() -> None:
    assert len(await read_bounded(await _stream(4096, declare=False), 4096)) == 4096


@pytest.mark.parametrize("declare", [True, False])
async def test_read_bounded_stops_past_the_limit(declare: bool) -> None:
    with pytest.raises(BodyTooLarge):
        await read_bounded(await _stream(5 * 1024 * 1024, declare=declare), 1 << 20)


# --- what each kind of request may resend ------------------------------------------------


@pytest.mark.parametrize(
    "step", [500, 502, 503, 504, 429, httpx.ReadError, httpx.ReadTimeout, httpx.ConnectError]
)
async def test_idempotent_calls_retry_every_retryable_failure(
    caller: MakeCaller, step: Step
) -> None:
    script = Script(step, 200)
    upstream, sleeps = caller(script)
    assert await call(upstream, IDEMPOTENT) == 200
    assert len(script.requests) == 2
    assert len(sleeps.calls) == 1
    assert 0.0 <= sleeps.calls[0] <= 0.2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409])
async def test_client_errors_are_returned_not_retried(caller: MakeCaller, status: int) -> None:
    script = Script(status)
    upstream, sleeps = caller(script)
    assert await call(upstream, IDEMPOTENT) == status
    assert len(script.requests) == 1
    assert sleeps.calls == []


async def test_attempts_are_capped_and_the_last_retry_after_is_kept(caller: MakeCaller) -> None:
    script = Script(429, headers={"Retry-After": "2"})
    upstream, sleeps = caller(script)
    with pytest.raises(UpstreamUnavailable) as failed:
        await call(upstream, IDEMPOTENT)
    assert type(failed.value) is UpstreamUnavailable
    assert failed.value.retry_after == 2.0
    assert len(script.requests) == 3
    assert sleeps.calls == [2.0, 2.0]


@pytest.mark.parametrize(
    ("replay", "step", "sent", "error"),
    [
        (SINGLE_USE, httpx.ReadError, 1, UpstreamUnavailable),
        (SINGLE_USE, httpx.ReadTimeout, 1, UpstreamUnavailable),
        (SINGLE_USE, httpx.RemoteProtocolError, 1, UpstreamUnavailable),
        (SINGLE_USE, 500, 1, UpstreamUnavailable),
        (SINGLE_USE, 503, 3, UpstreamUnavailable),
        (SINGLE_USE, httpx.ConnectError, 3, UpstreamUnavailable),
        (SINGLE_USE, httpx.ConnectTimeout, 3, UpstreamUnavailable),
        (REFRESH, httpx.ReadError, 2, UpstreamUnavailable),
        (REFRESH, 500, 2, UpstreamUnavailable),
        (REFRESH, 429, 3, UpstreamUnavailable),
        (NON_IDEMPOTENT, httpx.ReadTimeout, 1, OutcomeUnknown),
        (NON_IDEMPOTENT, httpx.ReadError, 1, OutcomeUnknown),
        (NON_IDEMPOTENT, httpx.WriteError, 1, OutcomeUnknown),
        (NON_IDEMPOTENT, 500, 1, OutcomeUnknown),
        (NON_IDEMPOTENT, 503, 1, OutcomeUnknown),
        (NON_IDEMPOTENT, 429, 3, UpstreamUnavailable),
        (NON_IDEMPOTENT, httpx.ConnectError, 3, UpstreamUnavailable),
    ],
)
async def test_unsafe_requests_are_resent_only_when_that_is_safe(
    caller: MakeCaller, replay: Replay, step: Step, sent: int, error: Any
) -> None:
    script = Script(step)
    upstream, _ = caller(script)
    with pytest.raises(error) as failed:
        await call(upstream, replay, "POST")
    assert type(failed.value) is error
    assert len(script.requests) == sent


async def test_retry_after_past_the_deadline_fails_at_once_with_the_hint(
    caller: MakeCaller,
) -> None:
    script = Script(429, 200, headers={"Retry-After": "60"})
    upstream, sleeps = caller(script, deadline=20.0)
    with pytest.raises(UpstreamUnavailable) as failed:
        await call(upstream, IDEMPOTENT)
    assert failed.value.retry_after == 60.0
    assert sleeps.calls == []
    assert len(script.requests) == 1


async def test_deadline_bounds_a_dripping_body(caller: MakeCaller) -> None:
    async def drip(request: httpx.Request) -> httpx.Response:
        async def body() -> AsyncIterator[bytes]:
            for _ in range(50):
                yield b" "
                await asyncio.sleep(0.05)

        return httpx.Response(200, content=body())

    upstream, _ = caller(drip, deadline=0.3)
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable) as idempotent:
        await call(upstream, IDEMPOTENT)
    with pytest.raises(OutcomeUnknown):
        await call(upstream, NON_IDEMPOTENT, "POST")
    assert time.monotonic() - started < 1.2
    assert type(idempotent.value) is UpstreamUnavailable


async def test_breaker_fails_fast_without_calling_upstream(caller: MakeCaller) -> None:
    script = Script(500)
    upstream, _ = caller(script, max_attempts=1, breaker_threshold=2)
    for _ in range(2):
        with pytest.raises(UpstreamUnavailable):
            await call(upstream, IDEMPOTENT)
    with pytest.raises(CircuitOpen) as opened:
        await call(upstream, IDEMPOTENT)
    assert len(script.requests) == 2
    assert 29.0 < (opened.value.retry_after or 0) <= 30.0


async def test_each_failed_attempt_logs_one_line_without_the_query(
    caller: MakeCaller, caplog: pytest.LogCaptureFixture
) -> None:
    script = Script(503, httpx.ConnectError, 200)
    upstream, _ = caller(script)
    with caplog.at_level(logging.WARNING, logger="tsprov.upstream"):
        await call(upstream, IDEMPOTENT)
    lines = [record.getMessage() for record in caplog.records]
    assert lines == [
        "tailscale call failed method=GET path=/api/v2/tailnet/-/devices status=503 "
        "attempt=1 reason=status 503",
        "tailscale call failed method=GET path=/api/v2/tailnet/-/devices status=- "
        "attempt=2 reason=ConnectError",
    ]


async def test_every_attempt_carries_the_connect_and_read_timeouts(caller: MakeCaller) -> None:
    script = Script(httpx.ConnectTimeout, 200)
    upstream, _ = caller(script, connect_timeout=1.5, read_timeout=4.0)
    await call(upstream, IDEMPOTENT)
    for request in script.requests:
        timeout = request.extensions["timeout"]
        assert (timeout["connect"], timeout["read"]) == (1.5, 4.0)
