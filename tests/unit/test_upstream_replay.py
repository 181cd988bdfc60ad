"""Which failures the upstream caller retries, and what each kind of request may resend."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from service.tailscale.transport import IDEMPOTENT, NON_IDEMPOTENT, REFRESH, SINGLE_USE, Replay
from service.tailscale.wire import OutcomeUnknown, UpstreamUnavailable
from tests.unit.upstream_support import MakeCaller, Script, Step, call

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
