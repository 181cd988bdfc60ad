"""Deadlines, retries, a circuit breaker and bounded reads for every call to Tailscale."""

from __future__ import annotations

import asyncio
import logging
import math
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from service.tailscale.breaker import CircuitBreaker, Clock
from service.tailscale.telemetry import CallObserver, NoObserver, endpoint_of
from service.tailscale.wire import (
    BodyTooLarge,
    CircuitOpen,
    OutcomeUnknown,
    UpstreamUnavailable,
)

log = logging.getLogger("tsprov.upstream")

Sleep = Callable[[float], Awaitable[None]]
WallClock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RetryPolicy:
    """Timeouts, deadline, retry budget, breaker and body limit for one client."""

    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    deadline: float = 20.0
    max_attempts: int = 3
    backoff_base: float = 0.2
    backoff_cap: float = 5.0
    breaker_threshold: int = 5
    breaker_cooldown: float = 30.0
    max_body_bytes: int = 1 << 20

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.breaker_threshold < 1 or self.max_body_bytes < 1:
            raise ValueError("max_attempts, breaker_threshold and max_body_bytes must be >= 1")

    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.read_timeout, connect=self.connect_timeout)


@dataclass(frozen=True)
class Replay:
    """What may be resent after a failure, given what the request does upstream."""

    # Statuses by which Tailscale says it did not process the request, so a resend is safe.
    refused_statuses: frozenset[int]
    # Resends allowed after a failure that may follow processing; None: the attempt budget.
    resends_after_send: int | None
    # When True, a possibly processed request raises OutcomeUnknown for a reconciler.
    outcome_unknowable: bool


# GETs, DELETEs and client-credentials tokens: repeating them changes nothing.
IDEMPOTENT = Replay(frozenset({429, 503}), None, outcome_unknowable=False)
# An authorization code is single-use: resent only when it provably never arrived.
SINGLE_USE = Replay(frozenset({429, 503}), 0, outcome_unknowable=False)
# A resent, already-rotated refresh token earns invalid_grant, which the caller handles.
REFRESH = Replay(frozenset({429, 503}), 1, outcome_unknowable=False)
# A second key mint is a second key: only 429 proves nothing was made.
NON_IDEMPOTENT = Replay(frozenset({429}), 0, outcome_unknowable=True)

# The request never left this process, so resending cannot repeat its effect.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_DELTA_SECONDS = re.compile(r"[0-9]{1,10}")


def backoff_delay(failures: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**(failures - 1))]."""
    ceiling = policy.backoff_base * 2.0 ** min(max(failures - 1, 0), 32)
    return rng.uniform(0.0, min(policy.backoff_cap, ceiling))


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait per Retry-After (delta-seconds or HTTP-date); None if absent or garbage."""
    if value is None:
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


async def read_bounded(response: httpx.Response, limit: int) -> bytes:
    """Read the whole body, stopping past ``limit`` bytes so an upstream cannot exhaust memory."""
    declared = response.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and len(declared) < 20 and int(declared) > limit:
        raise BodyTooLarge(f"Tailscale's answer is over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"Tailscale's answer is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass(frozen=True)
class UpstreamResponse:
    """A fully read answer whose status is below 500 and not one the Replay retries."""

    status: int
    headers: httpx.Headers
    body: bytes


@dataclass(frozen=True)
class _Failure:
    status: int | None
    reason: str
    retry_after: float | None = None
    maybe_processed: bool = False
    final: bool = False


@dataclass
class _CallState:
    attempt: int = 0
    in_flight: bool = False


def log_failure(request: httpx.Request, status: int | None, attempt: int, reason: str) -> None:
    """One line per failed upstream attempt: never a query string, header or body."""
    # The request id is added by the log formatters (service.ops.logs), as on every line.
    line = "tailscale call failed method=%s path=%s status=%s attempt=%d reason=%s"
    shown = "-" if status is None else status
    log.warning(line, request.method, request.url.path, shown, attempt, reason)


class UpstreamCaller:
    """Sends one request with retries, all under one deadline, behind one circuit breaker."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        policy: RetryPolicy,
        *,
        sleep: Sleep,
        clock: Clock,
        now: WallClock,
        rng: random.Random,
        telemetry: CallObserver | None = None,
    ) -> None:
        self._http = http
        self._policy = policy
        self._sleep = sleep
        self._clock = clock
        self._now = now
        self._rng = rng
        self._telemetry = telemetry or NoObserver()
        self.breaker = CircuitBreaker(policy, clock)

    async def call(self, request: httpx.Request, replay: Replay) -> UpstreamResponse:
        """Send until answered within the rules of ``replay``; raise TailscaleError otherwise."""
        endpoint, started, outcome = endpoint_of(request), self._clock(), "failed"
        try:
            answer = await self._call(request, replay)
            outcome = "ok" if answer.status < 400 else "refused"
            return answer
        except CircuitOpen:
            outcome = "breaker_open"
            raise
        except OutcomeUnknown:
            outcome = "unknown"
            raise
        finally:
            self._telemetry.upstream_call(endpoint, outcome, self._clock() - started)

    async def _call(self, request: httpx.Request, replay: Replay) -> UpstreamResponse:
        request.extensions["timeout"] = self._policy.timeout().as_dict()
        state = _CallState()
        try:
            # The deadline covers connecting, every wait and every byte of every body.
            async with asyncio.timeout(self._policy.deadline) as scope:
                return await self._attempts(request, replay, scope, state)
        except TimeoutError:
            log_failure(request, None, state.attempt, "deadline")
            self.breaker.record(failed=True)
            unknown = replay.outcome_unknowable and state.in_flight
            error = OutcomeUnknown if unknown else UpstreamUnavailable
            raise error("Tailscale did not answer within the deadline") from None

    async def _attempts(
        self, request: httpx.Request, replay: Replay, scope: asyncio.Timeout, state: _CallState
    ) -> UpstreamResponse:
        resends = 0
        while True:
            state.attempt += 1
            outcome = await self._attempt(request, replay, state)
            if isinstance(outcome, UpstreamResponse):
                if outcome.status >= 400:
                    log_failure(request, outcome.status, state.attempt, "refused")
                return outcome
            log_failure(request, outcome.status, state.attempt, outcome.reason)
            if outcome.maybe_processed:
                limit = replay.resends_after_send
                if outcome.final or (limit is not None and resends >= limit):
                    error = OutcomeUnknown if replay.outcome_unknowable else UpstreamUnavailable
                    message = f"no usable answer from Tailscale ({outcome.reason}); not resent"
                    raise error(message, retry_after=outcome.retry_after)
                resends += 1
            if state.attempt >= self._policy.max_attempts:
                message = f"Tailscale failed {state.attempt} attempts ({outcome.reason})"
                raise UpstreamUnavailable(message, retry_after=outcome.retry_after)
            await self._pause(scope, state.attempt, outcome.retry_after)
            self._telemetry.upstream_retry(endpoint_of(request))

    async def _pause(
        self, scope: asyncio.Timeout, failures: int, retry_after: float | None
    ) -> None:
        delay = retry_after
        if delay is None:
            delay = backoff_delay(failures, self._policy, self._rng)
        remaining = (scope.when() or math.inf) - asyncio.get_running_loop().time()
        if delay >= remaining:
            # Sleeping into the deadline only to fail there would waste the caller's time.
            raise UpstreamUnavailable("retrying would pass the deadline", retry_after=delay)
        await self._sleep(delay)

    async def _attempt(
        self, request: httpx.Request, replay: Replay, state: _CallState
    ) -> UpstreamResponse | _Failure:
        trial = self.breaker.admit()
        try:
            # Left True if the deadline cancels the attempt: the request may have arrived.
            state.in_flight = True
            outcome = await self._exchange(request, replay)
            state.in_flight = False
        finally:
            # A cancelled attempt is judged by whoever cancelled it (the deadline counts it).
            self.breaker.release(trial)
        self.breaker.record(failed=isinstance(outcome, _Failure))
        return outcome

    async def _exchange(
        self, request: httpx.Request, replay: Replay
    ) -> UpstreamResponse | _Failure:
        try:
            response = await self._http.send(request, stream=True)
        except _NOT_SENT as exc:
            return _Failure(None, type(exc).__name__)
        except httpx.TransportError as exc:
            return _Failure(None, type(exc).__name__, maybe_processed=True)
        status = response.status_code
        retry_after = parse_retry_after(response.headers.get("retry-after"), self._now())
        body: bytes | None = None
        reason = f"status {status}"
        try:
            body = await read_bounded(response, self._policy.max_body_bytes)
        except BodyTooLarge:
            reason = f"body over {self._policy.max_body_bytes} bytes"
            return _Failure(status, reason, maybe_processed=True, final=True)
        except httpx.RequestError as exc:
            reason = type(exc).__name__
        finally:
            await response.aclose()
        if status in replay.refused_statuses:
            return _Failure(status, reason, retry_after)
        if body is None or status >= 500:
            return _Failure(status, reason, retry_after, maybe_processed=True)
        return UpstreamResponse(status, response.headers, body)
