"""The dashboard and the alerts name only metrics /metrics exports; the rules file is sound."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import create_async_engine

from service.ops.scrape import waiting_for_connection
from tests.conftest import CallerFactory, bearer
from tests.ops.metric_names import (
    ALERTS,
    OPERATIONS,
    PENDING_AUDIT_METRICS,
    dashboard_expressions,
    exposed_names,
    names_in,
)

DURATION = re.compile(r"^[0-9]+[smhdwy]$")
SEVERITIES = {"page", "warning"}


@pytest.fixture
async def exposed(client: httpx.AsyncClient) -> set[str]:
    answer = await client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return exposed_names(answer.text)


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    assert set(document) == {"groups"}
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_every_metric_the_dashboard_names_is_exported(exposed: set[str]) -> None:
    named = names_in(dashboard_expressions())
    assert len(named) >= 12
    assert named - exposed - PENDING_AUDIT_METRICS == set()


def test_the_dashboard_shows_what_operators_asked_for() -> None:
    named = names_in(dashboard_expressions())
    assert {
        "tsprov_provisioning_requests",
        "tsprov_http_request_seconds_bucket",
        "tsprov_upstream_calls_total",
        "tsprov_grants",
        "tsprov_audit_sealer_lag_events",
    } <= named


def test_pending_audit_metrics_are_only_those_not_yet_exported(exposed: set[str]) -> None:
    # Fails once the audit work exports them: then the pending set must be emptied.
    assert exposed.isdisjoint(PENDING_AUDIT_METRICS)


def test_every_alert_is_a_well_formed_rule_on_exported_metrics(exposed: set[str]) -> None:
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert isinstance(rule["expr"], str)
        assert rule["expr"].strip()
        assert DURATION.match(rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"])
        assert names_in([rule["expr"]]) - exposed - PENDING_AUDIT_METRICS == set(), rule["alert"]
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]


def test_the_alerts_cover_what_operators_asked_for() -> None:
    watched = names_in([rule["expr"] for rule in alert_rules()])
    assert {
        "tsprov_upstream_breaker_state",
        "tsprov_db_pool_waiting",
        "tsprov_grant_refreshes_total",
        *PENDING_AUDIT_METRICS,
    } <= watched


def test_every_runbook_link_lands_on_a_section_of_operations_md() -> None:
    headings = re.findall(r"^#+ (.+)$", OPERATIONS.read_text(), re.MULTILINE)
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-") for heading in headings
    }
    for rule in alert_rules():
        path, anchor = rule["annotations"]["runbook_url"].split("#")
        assert path == "docs/operations.md"
        assert anchor in anchors, rule["alert"]


async def test_tasks_waiting_for_a_pooled_connection_are_counted(database_url: str) -> None:
    engine = create_async_engine(database_url, pool_size=1, max_overflow=0, pool_timeout=10)
    try:
        async with engine.connect() as held:
            await held.exec_driver_sql("SELECT 1")
            assert waiting_for_connection(engine.pool) == 0

            async def wait_for_one() -> None:
                async with engine.connect() as connection:
                    await connection.exec_driver_sql("SELECT 1")

            waiters = [asyncio.create_task(wait_for_one()) for _ in range(2)]
            for _ in range(200):
                if waiting_for_connection(engine.pool) == 2:
                    break
                await asyncio.sleep(0.01)
            assert waiting_for_connection(engine.pool) == 2
        await asyncio.gather(*waiters)
        assert waiting_for_connection(engine.pool) == 0
    finally:
        await engine.dispose()


async def test_statuses_are_counted_when_scraped(
    client: httpx.AsyncClient, make_caller: CallerFactory
) -> None:
    key = await make_caller("provision")
    created = await client.post(
        "/v1/users/metrics-user/provisioning-requests", headers=bearer(key), json={}
    )
    assert created.status_code == 201, created.text
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families((await client.get("/metrics")).text)
        for sample in family.samples
    }
    assert samples[("tsprov_provisioning_requests", (("status", "awaiting_consent"),))] >= 1
    assert ("tsprov_grants", (("status", "revoked"),)) in samples
    assert samples[("tsprov_db_pool_waiting", ())] == 0
