"""security.md item 36 under real concurrency: a burst that arrives at once, on a fresh app.

Each request here looks its key up on a connection of its own, as in ``tsprov serve``; the
test database's single shared connection could not hold twenty lookups at once.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable

from service.settings import Settings
from tests.conftest import bearer
from tests.faults.test_database_faults import app_on

BURST = 20  # the default refusal burst


async def test_item_36_a_good_callers_first_burst_is_not_taken_for_a_flood(
    base_settings: Settings, make_key: Callable[[], Awaitable[str]]
) -> None:
    # A fresh process has proven no key yet, and a caller's burst of three times the refusal
    # burst arrives at once. The requests past the burst wait for the lookups ahead of them;
    # the first of those proves the key, so every request is answered.
    key = await make_key()
    async with app_on(base_settings) as (_, api):
        answers = await asyncio.gather(
            *(api.get("/v1/users/alice/provisioning-requests", headers=bearer(key))
              for _ in range(3 * BURST))
        )  # fmt: skip
    assert [answer.status_code for answer in answers] == [200] * (3 * BURST)


async def test_item_36_a_burst_of_bad_keys_at_once_gets_the_burst_of_lookups_then_429(
    base_settings: Settings,
) -> None:
    # The same burst with bad keys: the requests past the burst wait for the lookups ahead,
    # which are refused and take their tokens, and then get their 429 without a lookup.
    async with app_on(base_settings) as (_, api):
        answers = await asyncio.gather(
            *(api.get("/v1/audit", headers=bearer("tsprov_" + secrets.token_urlsafe(32)))
              for _ in range(BURST + 10))
        )  # fmt: skip
    assert sorted(answer.status_code for answer in answers) == [401] * BURST + [429] * 10
