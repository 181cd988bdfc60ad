"""When to try a call again, and how long to wait first."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

import httpx

from tsprov_client.errors import (
    IdempotencyInFlight,
    RateLimited,
    ServerUnreachable,
    ServiceUnavailable,
    TsprovError,
)

# Transient: the same call may well succeed a moment later. An unsupported scheme or a bad
# proxy setting will not, so those are not retried.
RETRYABLE_TRANSPORT_ERRORS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delay-seconds or an HTTP date).

    Garbage or a negative number gives ``None`` (the caller's own backoff applies); a date
    in the past gives 0.
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = now or datetime.now(timezone.utc)
    return max(0.0, (when - current).total_seconds())


def is_retryable(error: TsprovError) -> bool:
    """Rate limits, an unavailable service, a lost connection and a twin call still in
    flight pass with time; every other error would only repeat."""
    transient = RateLimited | ServiceUnavailable | IdempotencyInFlight | ServerUnreachable
    return isinstance(error, transient) or error.status in (429, 503)


class Deadline:
    """A point in monotonic time that a logical call must not run past."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    @property
    def passed(self) -> bool:
        return self.remaining() <= 0


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with jitter, ``Retry-After`` first, within a deadline.

    ``deadline`` bounds one logical call with all its attempts; a wait that would run past
    it is not started, and the last failure is raised instead.
    """

    deadline: timedelta = timedelta(seconds=60)
    max_attempts: int = 8
    initial_backoff: float = 0.5
    max_backoff: float = 10.0

    def new_deadline(self) -> Deadline:
        return Deadline(self.deadline.total_seconds())

    def backoff(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` (1-based) when no hint was given."""
        ceiling = min(self.max_backoff, self.initial_backoff * 2 ** (attempt - 1))
        # Jitter spreads the retries of many clients that failed together; not a secret.
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311

    def next_delay(
        self, attempt: int, retry_after: float | None, deadline: Deadline
    ) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to stop trying."""
        if attempt >= self.max_attempts:
            return None
        delay = retry_after if retry_after is not None else self.backoff(attempt)
        return delay if delay < deadline.remaining() else None
