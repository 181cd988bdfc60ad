"""The circuit breaker, on its own and in front of the upstream caller."""

from __future__ import annotations

import pytest

from service.tailscale.breaker import CircuitBreaker
from service.tailscale.transport import IDEMPOTENT, RetryPolicy
from service.tailscale.wire import CircuitOpen, UpstreamUnavailable
from tests.unit.upstream_support import MakeCaller, Script, call


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


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


def test_breaker_state_reads_closed_open_half_open_and_closed_again() -> None:
    clock = Clock()
    breaker = CircuitBreaker(RetryPolicy(breaker_threshold=1, breaker_cooldown=30.0), clock)
    assert breaker.state == "closed"
    breaker.record(failed=True)
    assert breaker.state == "open"
    clock.now += 30
    assert breaker.state == "half_open"  # a trial may pass now
    assert breaker.admit() is True
    assert breaker.state == "half_open"
    breaker.release(True)
    breaker.record(failed=False)
    assert breaker.state == "closed"


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
