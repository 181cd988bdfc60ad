"""Retry-After parsing and full-jitter backoff, in isolation."""

from __future__ import annotations

import random
from datetime import timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.tailscale.transport import RetryPolicy, backoff_delay, parse_retry_after
from tests.unit.tailscale_support import NOW

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
