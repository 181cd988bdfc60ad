"""The circuit breaker in front of Tailscale: stop calling a service that keeps failing."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from service.tailscale.wire import CircuitOpen

if TYPE_CHECKING:
    from service.tailscale.transport import RetryPolicy

Clock = Callable[[], float]


class CircuitBreaker:
    """Opens after ``threshold`` failed attempts in a row; after ``cooldown`` one trial passes."""

    def __init__(self, policy: RetryPolicy, clock: Clock) -> None:
        self._policy = policy
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    def admit(self) -> bool:
        """Let an attempt through or raise CircuitOpen; True when it is the half-open trial."""
        if self._opened_at is None:
            return False
        remaining = self._opened_at + self._policy.breaker_cooldown - self._clock()
        if remaining > 0:
            raise CircuitOpen("Tailscale keeps failing; not calling it", retry_after=remaining)
        if self._trial_running:
            # The trial settles within one deadline, so that is when asking again makes sense.
            hint = self._policy.deadline
            raise CircuitOpen("Tailscale is being probed", retry_after=hint)
        self._trial_running = True
        return True

    @property
    def state(self) -> str:
        """``closed``, ``open``, or ``half_open`` once a trial may pass (or is passing)."""
        if self._opened_at is None:
            return "closed"
        if self._trial_running or self._clock() >= self._opened_at + self._policy.breaker_cooldown:
            return "half_open"
        return "open"

    def release(self, trial: bool) -> None:
        if trial:
            self._trial_running = False

    def record(self, *, failed: bool) -> None:
        if not failed:
            self._failures, self._opened_at = 0, None
            return
        # Only success resets the count, so a failed half-open trial reopens at once.
        self._failures += 1
        if self._failures >= self._policy.breaker_threshold:
            self._opened_at = self._clock()
