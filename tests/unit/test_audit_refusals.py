"""Refused attempts are audited as FAILED_REQUEST events, in their own transaction."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from service.callers.store import create_caller
from service.crypto.keyring import KeyRing
from service.main import build_tailscale_client, create_app
from service.models import AuditEvent, Caller
from service.provisioning.notify import RequestNotifier
from service.settings import Settings
from service.state import AppContext
from tests.conftest import bearer
from tests.unit.audit_support import assert_tailscale_shape

PATH_VALUES = {"user_id": "alice", "request_id": str(uuid.uuid4()), "node_id": "nA1CNTRL"}
NO_KEYS: list[dict[str, str]] = [
    {},
    {"Authorization": "Bearer nonsense"},
    {"Authorization": "Basic x"},
]


def v1_routes(context: AppContext) -> list[tuple[str, str]]:
    """Every (method, concrete path) the app documents under /v1."""
    paths = create_app(context=context).openapi()["paths"]
    found = []
    for template, operations in sorted(paths.items()):
        if template.startswith("/v1"):
            path = re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES.get(m.group(1), "x"), template)
            found += [(method.upper(), path) for method in sorted(operations)]
    return found


async def failed_requests(session: AsyncSession) -> list[dict[str, Any]]:
    rows = await session.scalars(
        select(AuditEvent)
        .where(AuditEvent.event_name.like("FAILED_REQUEST.%"))
        .order_by(AuditEvent.seq)
    )
    return [{"name": row.event_name, **row.target, "actor": row.actor, "origin": row.origin,
             "error": row.error, "user_id": row.user_id} for row in rows]  # fmt: skip


async def test_every_v1_route_audits_a_missing_or_bad_key(
    context: AppContext, session: AsyncSession
) -> None:
    routes = v1_routes(context)
    assert ("GET", "/v1/audit") in routes
    assert len(routes) >= 8
    app = create_app(context=context)
    attempts = [(method, path, headers) for method, path in routes for headers in NO_KEYS]
    for number, (method, path, headers) in enumerate(attempts):
        # Each from an address of its own: refusals from one address are folded and throttled.
        source = (f"192.0.2.{number + 1}", 50000)
        transport = httpx.ASGITransport(app=app, client=source)
        async with httpx.AsyncClient(transport=transport, base_url="http://tsprov.test") as client:
            response = await client.request(method, path, headers=headers)
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer")
    events = await failed_requests(session)
    assert len(events) == len(attempts)
    assert [event["name"] for event in events] == [f"{m} {p}" for m, p, _ in attempts]
    for event in events:
        assert event["type"] == "FAILED_REQUEST"
        assert event["origin"] == "CONFIG_API"
        assert event["actor"]["loginName"] == "anonymous"
        assert event["error"]


async def test_refusal_with_an_odd_path_is_still_a_401(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    response = await client.get("/v1/users/al%00ice", headers={"Authorization": "Bearer x"})
    assert response.status_code == 401
    (event,) = await failed_requests(session)
    assert event["name"] == "GET /v1/users/al\\u0000ice"


@dataclass
class Committed:
    client: httpx.AsyncClient
    sessions: async_sessionmaker[AsyncSession]
    context: AppContext


@pytest.fixture
async def committed(
    settings: Settings, engine: AsyncEngine, key_ring: KeyRing
) -> AsyncIterator[Committed]:
    """The app on real, separately committed transactions, as in production; cleaned after."""
    sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
    async with sessions() as session:
        marker = await session.scalar(text("SELECT coalesce(max(seq), 0) FROM audit_event"))
    http = httpx.AsyncClient()
    context = AppContext(
        settings=settings, engine=engine, sessions=sessions, key_ring=key_ring,
        tailscale=build_tailscale_client(settings, http),
        notifier=RequestNotifier(settings.database_url),
    )  # fmt: skip
    transport = httpx.ASGITransport(app=create_app(context=context))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://tsprov.test") as client:
            yield Committed(client, sessions, context)
    finally:
        await http.aclose()
        async with sessions() as session, session.begin():
            await session.execute(delete(AuditEvent).where(AuditEvent.seq > marker))
            await session.execute(delete(Caller).where(Caller.name.like("refusals-%")))


async def _caller(
    sessions: async_sessionmaker[AsyncSession], scopes: list[str], users: list[str]
) -> tuple[Caller, str]:
    async with sessions() as session, session.begin():
        return await create_caller(session, f"refusals-{uuid.uuid4().hex[:8]}", scopes, users)


async def test_refusals_survive_the_requests_rollback(committed: Committed) -> None:
    unknown = "tsprov_" + "A" * 43  # well formed, so the key is looked up and the session used
    reader, read_key = await _caller(committed.sessions, ["read"], [])
    limited, limited_key = await _caller(committed.sessions, ["audit"], ["u1"])
    window = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"}
    answers = [
        await committed.client.get("/v1/audit", params=window, headers=bearer(unknown)),
        await committed.client.get("/v1/audit", params=window, headers=bearer(read_key)),
        await committed.client.get(
            "/v1/audit", params={**window, "user_id": "u2"}, headers=bearer(limited_key)
        ),
        await committed.client.get("/v1/users/a%00b", headers=bearer(unknown)),
    ]
    assert [answer.status_code for answer in answers] == [401, 403, 403, 401]
    # The second anonymous refusal from this address is folded, and written on a flush.
    await committed.context.refusals.flush(committed.sessions, everything=True)
    async with committed.sessions() as session:
        events = await failed_requests(session)
        logs = await session.scalars(select(AuditEvent).order_by(AuditEvent.seq))
        for log in logs:
            assert_tailscale_shape(_json(log))
    assert [(event["name"], event["actor"]["loginName"]) for event in events] == [
        ("GET /v1/audit", "anonymous"),
        ("GET /v1/audit", reader.name),
        ("GET /v1/audit", limited.name),
        ("GET /v1/users/a\\u0000b", "anonymous"),
    ]
    assert events[1]["actor"] == {
        "id": str(reader.id), "type": "OAUTH_CLIENT", "loginName": reader.name,
        "displayName": reader.name, "tags": [],
    }  # fmt: skip
    assert "scope" in events[1]["error"]
    assert events[2]["user_id"] == "u2"


def _json(event: AuditEvent) -> dict[str, Any]:
    from service.audit.events import event_json

    return event_json(event)
