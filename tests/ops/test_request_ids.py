"""A request id per request: taken from a sane X-Request-ID, returned, logged, audited."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.models import AuditEvent
from tests.conftest import CallerFactory, bearer
from tests.security.logcapture import ProductionLogs


async def test_a_sane_request_id_from_the_proxy_is_kept_and_returned(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get("/healthz", headers={"X-Request-ID": "edge-7f3a.b2:c9=1"})
    assert answer.headers["X-Request-ID"] == "edge-7f3a.b2:c9=1"


@pytest.mark.parametrize(
    "offered",
    [
        "x" * 129,
        "has space",
        "line\\nbreak",
        'quote"d',
        "tsprov_AbCdEf0123456789",
        "TSKEY-auth-kXyz-123",
        "",
    ],
)
async def test_an_unsafe_request_id_is_replaced_by_a_fresh_one(
    client: httpx.AsyncClient, offered: str
) -> None:
    answer = await client.get("/healthz", headers={"X-Request-ID": offered})
    returned = answer.headers["X-Request-ID"]
    assert returned != offered
    assert len(returned) == 32
    assert int(returned, 16) >= 0


async def test_each_request_without_one_gets_its_own(client: httpx.AsyncClient) -> None:
    first = (await client.get("/healthz")).headers["X-Request-ID"]
    second = (await client.get("/healthz")).headers["X-Request-ID"]
    assert first != second


async def test_one_request_id_joins_the_json_log_line_the_header_and_the_audit_event(
    client: httpx.AsyncClient, make_caller: CallerFactory, session: AsyncSession
) -> None:
    admin = await make_caller("admin")
    with ProductionLogs(log_format="json", only_this_thread=True) as logs:
        answer = await client.put(
            "/v1/users/request-id-user",
            headers={**bearer(admin), "X-Request-ID": "req-join-0001"},
            json={"display_name": "Request Id"},
        )
    assert answer.status_code in (200, 201), answer.text
    assert answer.headers["X-Request-ID"] == "req-join-0001"

    entries = [json.loads(line) for line in logs.lines()]
    access = [entry for entry in entries if entry["logger"] == "tsprov.access"]
    assert len(access) == 1
    line = access[0]
    assert line["request_id"] == "req-join-0001"
    assert line["route"] == "/v1/users/{user_id}"
    assert line["method"] == "PUT"
    assert line["status"] == answer.status_code
    assert line["duration_ms"] >= 0
    assert {"time", "level", "logger", "message"} <= set(line)

    events = (
        await session.scalars(select(AuditEvent).where(AuditEvent.request_id == "req-join-0001"))
    ).all()
    assert "USER.CREATE" in {event.event_name for event in events}


async def test_a_refused_call_is_audited_under_its_request_id(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    answer = await client.get(
        "/v1/users/alice", headers={**bearer("tsprov_unknown"), "X-Request-ID": "req-refused-1"}
    )
    assert answer.status_code == 401
    refused = await session.scalar(
        select(AuditEvent).where(AuditEvent.request_id == "req-refused-1")
    )
    assert refused is not None
    assert refused.target["type"] == "FAILED_REQUEST"
