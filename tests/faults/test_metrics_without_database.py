"""/metrics keeps answering when the database stops: the last counts, within a bounded time."""

from __future__ import annotations

from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families

from service.ops.scrape import COUNT_TIMEOUT_SECONDS
from service.settings import Settings
from tests.faults.pg_proxy import PostgresProxy
from tests.faults.test_database_faults import app_on, on_port, timed


def awaiting_consent(exposition: str) -> float:
    return next(
        sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == "tsprov_provisioning_requests"
        and sample.labels == {"status": "awaiting_consent"}
    )


async def test_a_scrape_with_the_database_frozen_answers_the_last_counts(
    base_settings: Settings,
) -> None:
    target = urlsplit(base_settings.database_url)
    proxy = await PostgresProxy(target.hostname or "127.0.0.1", target.port or 5432).start()
    settings = on_port(base_settings, proxy.port, db_pool_timeout_seconds=0.5)
    try:
        async with app_on(settings) as (context, api):
            before = await api.get("/metrics")
            assert before.status_code == 200
            counted = awaiting_consent(before.text)
            proxy.freeze()
            context.metrics.counted_at = float("-inf")  # due for a count now

            frozen, elapsed = await timed(api, "GET", "/metrics")
            assert frozen.status_code == 200
            assert awaiting_consent(frozen.text) == counted
            assert elapsed < COUNT_TIMEOUT_SECONDS + 2.0
            proxy.thaw()
    finally:
        await proxy.close()
