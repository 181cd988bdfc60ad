"""GET /v1/audit, /v1/audit/export and /v1/audit/verify over the full app."""

from __future__ import annotations

import itertools
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.audit import query as audit_query
from service.audit.query import EXPORT_BATCH
from tests.conftest import CallerFactory, bearer
from tests.unit.audit_support import append_at, seal_now

T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
HOUR = {"start": "2026-04-01T09:00:00Z", "end": "2026-04-01T10:00:00Z"}


@pytest.fixture
async def auditor(make_caller: CallerFactory) -> dict[str, str]:
    return bearer(await make_caller("audit"))


async def fill(sessions: async_sessionmaker[AsyncSession], count: int) -> None:
    async with sessions() as session, session.begin():
        for index in range(count):
            await append_at(session, T0 + timedelta(milliseconds=index), user_id=f"u{index % 7}")


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code


async def test_envelope_and_pages(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], auditor: dict[str, str]
) -> None:
    await fill(sessions, 12)
    seen: list[str] = []
    params: dict[str, Any] = {**HOUR, "limit": 5}
    for _ in range(5):
        response = await client.get("/v1/audit", params=params, headers=auditor)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"version", "tailnet", "logs", "next_cursor"}
        assert (body["version"], body["tailnet"]) == ("1.1", "-")
        seen += [log["id"] for log in body["logs"]]
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert len(seen) == len(set(seen)) == 12


async def test_repeated_filters_over_http(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], auditor: dict[str, str]
) -> None:
    await fill(sessions, 14)
    both_events = {**HOUR, "event": ["PROVISIONING_REQUEST.CREATE", "NODE.CREATE"]}
    response = await client.get(
        "/v1/audit", params={**both_events, "user_id": "u3"}, headers=auditor
    )
    assert [log["userId"] for log in response.json()["logs"]] == ["u3", "u3"]
    two_actors = {**HOUR, "actor": ["devbox", "x"]}
    response = await client.get("/v1/audit", params=two_actors, headers=auditor)
    assert len(response.json()["logs"]) == 14
    only_revokes = {**HOUR, "event": "GRANT.REVOKE"}
    response = await client.get("/v1/audit", params=only_revokes, headers=auditor)
    assert response.json()["logs"] == []


@pytest.mark.parametrize(
    "params",
    [
        {"end": "2026-04-01T10:00:00Z"},
        {"start": "2026-04-01T09:00:00Z"},
        {"start": "yesterday", "end": "2026-04-01T10:00:00Z"},
        {"start": "2026-04-01T11:00:00Z", "end": "2026-04-01T10:00:00Z"},
        {**HOUR, "limit": 0},
        {**HOUR, "limit": 501},
        {**HOUR, "cursor": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
        {**HOUR, "user_id": "not a user"},
        # Valid local times whose UTC value falls outside years 1-9999.
        {"start": "0001-01-01T00:00:00+01:00", "end": "2026-04-01T10:00:00Z"},
        {"start": "2026-04-01T09:00:00Z", "end": "9999-12-31T23:59:59-01:00"},
    ],
)
async def test_invalid_queries_are_422(
    client: httpx.AsyncClient, auditor: dict[str, str], params: dict[str, Any]
) -> None:
    response = await client.get("/v1/audit", params=params, headers=auditor)
    assert_problem(response, 422, "validation_failed")


async def test_the_widest_window_is_served(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], auditor: dict[str, str]
) -> None:
    await fill(sessions, 3)
    widest = {"start": "0001-01-01T00:00:00Z", "end": "9999-12-31T23:59:59.999999Z"}
    response = await client.get("/v1/audit", params=widest, headers=auditor)
    assert response.status_code == 200, response.text
    assert len(response.json()["logs"]) >= 3


async def test_export_streams_ndjson_across_batches(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], auditor: dict[str, str]
) -> None:
    total = EXPORT_BATCH + 37
    await fill(sessions, total)
    async with client.stream("GET", "/v1/audit/export", params=HOUR, headers=auditor) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        lines = [line async for line in response.aiter_lines() if line]
    events = [json.loads(line) for line in lines]
    assert len(events) == total
    times = [event["eventTime"] for event in events]
    assert times == sorted(times)
    assert len({event["id"] for event in events}) == total


def slow_database_on_batch(monkeypatch: pytest.MonkeyPatch, number: int) -> None:
    """The ``number``-th export batch meets a database that cancels it (statement_timeout)."""
    read_page = audit_query._fetch
    calls = itertools.count(1)

    async def fetch(session: AsyncSession, *args: Any) -> Any:
        if next(calls) == number:
            await session.execute(text("SET LOCAL statement_timeout = 1"))
            await session.execute(text("SELECT pg_sleep(1)"))
        return await read_page(session, *args)

    monkeypatch.setattr(audit_query, "_fetch", fetch)


async def test_export_failing_at_once_is_an_error_status_not_an_empty_200(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    auditor: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await fill(sessions, 3)
    slow_database_on_batch(monkeypatch, 1)
    response = await client.get("/v1/audit/export", params=HOUR, headers=auditor)
    assert_problem(response, 503, "database_unavailable")


async def test_export_failing_midway_ends_with_an_error_record(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    auditor: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await fill(sessions, EXPORT_BATCH + 5)
    slow_database_on_batch(monkeypatch, 2)
    async with client.stream("GET", "/v1/audit/export", params=HOUR, headers=auditor) as response:
        assert response.status_code == 200
        lines = [json.loads(line) async for line in response.aiter_lines() if line]
    *events, trailer = lines
    assert len(events) == EXPORT_BATCH
    assert all("eventTime" in event for event in events)
    assert trailer["error"]["code"] == "export_incomplete"
    assert trailer["error"]["exported"] == EXPORT_BATCH
    assert "pg_sleep" not in json.dumps(trailer)
    stopped = [r for r in caplog.records if r.getMessage().startswith("audit export stopped")]
    assert [record.levelno for record in stopped] == [logging.ERROR]


async def test_export_validates_before_streaming(
    client: httpx.AsyncClient, auditor: dict[str, str]
) -> None:
    response = await client.get("/v1/audit/export", params={"start": "x"}, headers=auditor)
    assert_problem(response, 422, "validation_failed")


async def test_verify_is_admin_only_and_names_the_edit(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    session: AsyncSession,
    make_caller: CallerFactory,
    auditor: dict[str, str],
) -> None:
    admin = bearer(await make_caller("admin"))
    await fill(sessions, 4)
    total = await session.scalar(text("SELECT count(*) FROM audit_event"))
    unsealed = (await client.get("/v1/audit/verify", headers=admin)).json()
    assert (unsealed["ok"], unsealed["checked"], unsealed["pending"]) == (True, 0, total)
    await seal_now(session)
    await session.commit()
    response = await client.get("/v1/audit/verify", headers=admin)
    assert response.json() == {
        "ok": True,
        "checked": total,
        "pending": 0,
        "checkpoint": None,
        "first_bad_event": None,
        "reason": None,
    }
    assert_problem(await client.get("/v1/audit/verify", headers=auditor), 403, "forbidden")
    edited, before = (
        await session.execute(
            text(
                "SELECT id, (SELECT count(*) FROM audit_event b WHERE b.seq < a.seq) "
                "FROM audit_event a WHERE user_id = 'u2'"
            )
        )
    ).one()
    await session.execute(text("UPDATE audit_event SET error = 'x' WHERE id = :id"), {"id": edited})
    await session.commit()
    body = (await client.get("/v1/audit/verify", headers=admin)).json()
    assert (body["ok"], body["first_bad_event"], body["checked"]) == (False, str(edited), before)
    assert body["reason"].startswith("edited")


async def test_a_key_limited_to_users_must_name_one(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    make_caller: CallerFactory,
) -> None:
    await fill(sessions, 7)
    limited = bearer(await make_caller("audit", users=["u1", "u2"]))
    assert_problem(await client.get("/v1/audit", params=HOUR, headers=limited), 403, "forbidden")
    outside = {**HOUR, "user_id": "u3"}
    assert_problem(await client.get("/v1/audit", params=outside, headers=limited), 403, "forbidden")
    inside = await client.get("/v1/audit", params={**HOUR, "user_id": "u2"}, headers=limited)
    assert [log["userId"] for log in inside.json()["logs"]] == ["u2"]
