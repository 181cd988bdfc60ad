"""429s, Retry-After, backoff and per-attempt timeouts, counted at the sandbox (items 23, 24).

security.md, fault case: 429 with `Retry-After: 7`, with an HTTP date, with garbage → waits
accordingly, within the deadline. Waits here are a second or two; a 7 s wait is proven
against a 2 s deadline, which it must not sleep into.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from tests.faults.conftest import GrantFactory, ServiceFactory
from tests.helpers.browser import Browser
from tests.helpers.fault_flows import (
    add_fault,
    claim,
    consented_user,
    gaps,
    logged,
    mint_started_at,
    ready_request,
    set_switches,
)
from tests.helpers.steps import Sessions, expire_access_tokens

# RetryPolicy's defaults: full jitter under base * 2**(failures - 1).
BACKOFF_BASE = 0.2
# Thread hops between the service, the sandbox and its log.
SLACK = 0.25


async def ready_to_mint(
    start_service: ServiceFactory,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    key: str,
    **overrides: float,
) -> tuple[httpx.AsyncClient, str]:
    service = await start_service(reusable=True, **overrides)
    user = await consented_user(sandbox, service.api, browser, key)
    return service.api, await ready_request(service.api, key, user)


async def mints(sandbox: httpx.AsyncClient, settle: int) -> list[tuple[int | None, float]]:
    """Each key POST's status, with the seconds since the one before (0 for the first)."""
    entries = await logged(sandbox, "keys", method="POST", settle=settle)
    return list(zip([entry["status"] for entry in entries], [0.0, *gaps(entries)], strict=True))


def http_date_in(seconds: float) -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=seconds), usegmt=True)


@pytest.mark.parametrize(
    ("retry_after", "least", "most"),
    [
        pytest.param(lambda: "1", 1.0, 1.0 + SLACK, id="seconds"),
        # An HTTP date has whole seconds, so two seconds ahead is between one and two away.
        pytest.param(lambda: http_date_in(2), 1.0 - SLACK, 2.0 + SLACK, id="HTTP date"),
        pytest.param(lambda: "soon, maybe", 0.0, BACKOFF_BASE + SLACK, id="garbage"),
    ],
)
async def test_a_429_is_retried_after_what_retry_after_says(
    retry_after: Callable[[], str],
    least: float,
    most: float,
    start_service: ServiceFactory,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    caller_key: str,
) -> None:
    api, request_id = await ready_to_mint(
        start_service, sandbox, browser, caller_key, upstream_deadline_seconds=4
    )
    await add_fault(
        sandbox, route="keys", method="POST", status=429, retry_after=retry_after(), fail_times=1
    )

    answer = await claim(api, caller_key, request_id)

    assert answer.status_code == 200, answer.text
    [(first, _), (second, waited)] = await mints(sandbox, settle=2)
    assert (first, second) == (429, 200)
    assert least <= waited <= most


async def test_a_retry_after_beyond_the_deadline_fails_fast_with_the_hint(
    start_service: ServiceFactory,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    caller_key: str,
    db: Sessions,
) -> None:
    api, request_id = await ready_to_mint(
        start_service, sandbox, browser, caller_key, upstream_deadline_seconds=2
    )
    await add_fault(sandbox, route="keys", method="POST", status=429, retry_after="7", fail_times=1)

    started = time.monotonic()
    answer = await claim(api, caller_key, request_id)
    elapsed = time.monotonic() - started

    assert answer.status_code == 503, answer.text
    assert answer.json()["code"] == "upstream_unavailable"
    assert answer.headers["retry-after"] == "7"
    assert elapsed < 1.5  # neither 7 s nor the 2 s deadline: waiting could not succeed
    assert await mints(sandbox, settle=1) == [(429, 0.0)]
    # A 429 proves no key was made, so the request is free to claim again.
    assert await mint_started_at(db, request_id) is None
    assert (await claim(api, caller_key, request_id)).status_code == 200


async def test_429s_without_end_stop_at_the_attempt_budget(
    start_service: ServiceFactory, sandbox: httpx.AsyncClient, browser: Browser, caller_key: str
) -> None:
    api, request_id = await ready_to_mint(
        start_service, sandbox, browser, caller_key, upstream_max_attempts=3
    )
    await add_fault(sandbox, route="keys", method="POST", status=429, retry_after="0")

    answer = await claim(api, caller_key, request_id)

    assert answer.status_code == 503, answer.text
    assert answer.json()["code"] == "upstream_unavailable"
    assert [status for status, _ in await mints(sandbox, settle=3)] == [429, 429, 429]


async def test_429s_without_retry_after_back_off_exponentially_under_full_jitter(
    start_service: ServiceFactory, sandbox: httpx.AsyncClient, browser: Browser, caller_key: str
) -> None:
    api, request_id = await ready_to_mint(
        start_service, sandbox, browser, caller_key, upstream_max_attempts=4
    )
    await add_fault(sandbox, route="keys", method="POST", status=429, fail_times=3)

    answer = await claim(api, caller_key, request_id)

    assert answer.status_code == 200, answer.text
    attempts = await mints(sandbox, settle=4)
    assert [status for status, _ in attempts] == [429, 429, 429, 200]
    for failures, (_, waited) in enumerate(attempts[1:], start=1):
        assert waited <= BACKOFF_BASE * 2 ** (failures - 1) + SLACK


async def test_a_4xx_from_tailscale_is_answered_not_retried(
    start_service: ServiceFactory, sandbox: httpx.AsyncClient, browser: Browser, caller_key: str
) -> None:
    api, request_id = await ready_to_mint(
        start_service, sandbox, browser, caller_key, upstream_max_attempts=5
    )
    await add_fault(sandbox, route="keys", method="POST", status=400, fail_times=1)

    answer = await claim(api, caller_key, request_id)

    assert answer.status_code == 502, answer.text
    assert answer.json()["code"] == "upstream_refused"
    assert await mints(sandbox, settle=1) == [(400, 0.0)]


async def test_a_read_timeout_ends_one_attempt_and_the_refresh_is_resent(
    start_granted: GrantFactory,
    sandbox: httpx.AsyncClient,
    caller_key: str,
    db: Sessions,
) -> None:
    service, user = await start_granted(upstream_read_timeout_seconds=0.3)
    request_id = await ready_request(service.api, caller_key, user)
    await expire_access_tokens(db, user)
    # Without rotation the late first answer spends nothing the resend needs.
    await set_switches(sandbox, rotate_refresh_tokens=False)
    await add_fault(
        sandbox, route="token", grant_type="refresh_token", latency_seconds=1.5, fail_times=1
    )

    started = time.monotonic()
    answer = await claim(service.api, caller_key, request_id)
    elapsed = time.monotonic() - started

    assert answer.status_code == 200, answer.text
    assert elapsed < 1.2  # the held first attempt was cut at the read timeout, not waited out
    # The resend was answered at once; the held first attempt ends at the sandbox later.
    refreshes = await logged(sandbox, "token", grant_type="refresh_token", settle=2)
    assert [entry["fault_id"] is None for entry in refreshes] == [True, False]
