"""Each event's shape against tailscale.md's ConfigurationAuditLog, and api.md's conventions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.events import (
    ANONYMOUS,
    ORIGIN_API,
    WORKER,
    Actor,
    Event,
    Target,
    caller_actor,
    event_group,
    event_json,
    record_event,
    record_events,
    user_actor,
)
from service.models import AuditEvent
from tests.conftest import CallerFactory, bearer
from tests.unit.audit_support import append_at, assert_tailscale_shape


async def test_envelope_fields_and_values(session: AsyncSession) -> None:
    before = datetime.now(UTC)
    actor = Actor(id="c-9", type="OAUTH_CLIENT", login_name="devbox", tags=["tag:ci"])
    target = Target(id="r-1", name="alice", type="PROVISIONING_REQUEST", property="STATUS")
    event = await record_event(
        session, origin=ORIGIN_API, actor=actor, target=target, action="UPDATE",
        old="awaiting_consent", new="ready", details="consent completed", user_id="alice",
    )  # fmt: skip
    log = event_json(event)
    assert_tailscale_shape(log)
    assert before <= datetime.fromisoformat(log["eventTime"]) <= datetime.now(UTC)
    assert log["origin"] == "CONFIG_API"
    assert log["actor"] == {
        "id": "c-9", "type": "OAUTH_CLIENT", "loginName": "devbox", "displayName": "devbox",
        "tags": ["tag:ci"],
    }  # fmt: skip
    assert log["target"] == {
        "id": "r-1", "name": "alice", "type": "PROVISIONING_REQUEST", "isEphemeral": False,
        "property": "STATUS",
    }  # fmt: skip
    assert (log["action"], log["old"], log["new"]) == ("UPDATE", "awaiting_consent", "ready")
    assert (log["actionDetails"], log["error"], log["userId"]) == ("consent completed", "", "alice")
    assert event.event_name == "PROVISIONING_REQUEST.UPDATE"


async def test_one_operation_shares_an_event_group(session: AsyncSession) -> None:
    target = Target(id="g-1", name="alice", type="GRANT")
    with event_group() as group:
        first = await record_event(
            session, origin="CONTROL", actor=WORKER, target=target, action="EXPIRED"
        )
        second = await record_event(
            session, origin="CONTROL", actor=WORKER, target=target, action="REVOKE"
        )
    alone = await record_event(
        session, origin="CONTROL", actor=WORKER, target=target, action="UPDATE"
    )
    assert first.event_group_id == second.event_group_id == group
    assert alone.event_group_id != group


def test_actor_conventions() -> None:
    caller_id = uuid.uuid4()
    assert caller_actor(caller_id, "devbox").as_json() == {
        "id": str(caller_id), "type": "OAUTH_CLIENT", "loginName": "devbox",
        "displayName": "devbox", "tags": [],
    }  # fmt: skip
    assert ANONYMOUS.as_json()["loginName"] == "anonymous"
    assert WORKER.as_json()["type"] == "AUTOMATED_WORKER"
    assert user_actor("alice", "alice@example.com").as_json()["type"] == "USER"


async def _events(client: httpx.AsyncClient, key: str, **filters: Any) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    params = {
        "start": (now - timedelta(minutes=5)).isoformat(),
        "end": (now + timedelta(minutes=5)).isoformat(),
        **filters,
    }
    response = await client.get("/v1/audit", params=params, headers=bearer(key))
    assert response.status_code == 200, response.text
    logs: list[dict[str, Any]] = response.json()["logs"]
    for log in logs:
        assert_tailscale_shape(log)
    return logs


async def test_user_events_from_the_api(
    client: httpx.AsyncClient, make_caller: CallerFactory
) -> None:
    admin = await make_caller("admin", name="ops-console")
    body = {"tailscale_login": "alice@example.com", "display_name": "Alice"}
    response = await client.put("/v1/users/alice", json=body, headers=bearer(admin))
    assert response.status_code == 200, response.text
    logs = await _events(client, admin, user_id="alice")
    assert [(log["target"]["type"], log["action"]) for log in logs] == [
        ("USER", "CREATE"), ("USER", "UPDATE"), ("USER", "UPDATE"),
    ]  # fmt: skip
    for log in logs:
        assert log["origin"] == "CONFIG_API"
        assert (log["actor"]["type"], log["actor"]["loginName"]) == ("OAUTH_CLIENT", "ops-console")
        assert log["target"]["name"] == "alice"
    assert {log["target"]["property"]: log["new"] for log in logs[1:]} == {
        "TAILSCALE_LOGIN": "alice@example.com", "DISPLAY_NAME": "Alice",
    }  # fmt: skip
    assert len({log["eventGroupID"] for log in logs}) == 1


async def test_provisioning_request_events_from_the_api(
    client: httpx.AsyncClient, make_caller: CallerFactory
) -> None:
    caller = await make_caller("provision", "audit", name="devbox")
    created = await client.post(
        "/v1/users/bob/provisioning-requests", json={}, headers=bearer(caller)
    )
    assert created.status_code == 201, created.text
    request_id = created.json()["id"]
    cancelled = await client.delete(
        f"/v1/provisioning-requests/{request_id}", headers=bearer(caller)
    )
    assert cancelled.status_code == 204, cancelled.text
    logs = await _events(client, caller, target=request_id)
    assert [log["action"] for log in logs] == ["CREATE", "UPDATE"]
    create, update = logs
    assert create["target"]["type"] == update["target"]["type"] == "PROVISIONING_REQUEST"
    assert (create["target"]["id"], create["target"]["name"]) == (request_id, "bob")
    assert update["target"]["property"] == "STATUS"
    assert (update["old"], update["new"]) == ("awaiting_consent", "cancelled")
    for log in logs:
        assert log["origin"] == "CONFIG_API"
        assert log["actor"]["loginName"] == "devbox"
        assert log["userId"] == "bob"


async def test_event_time_never_goes_behind_the_newest_event(session: AsyncSession) -> None:
    # Another replica, whose clock runs a minute ahead, wrote the previous event.
    ahead = datetime.now(UTC) + timedelta(minutes=1)
    await append_at(session, ahead, user_id="alice")
    event = await record_event(
        session, origin="CONTROL", actor=WORKER, target=Target("g", "alice", "GRANT"),
        action="EXPIRED",
    )  # fmt: skip
    assert event.event_time == ahead


async def test_events_recorded_together_keep_their_order_and_their_own_contents(
    session: AsyncSession,
) -> None:
    key = Event(ORIGIN_API, WORKER, Target(id="k-1", name="alice", type="API_KEY"), "CREATE")
    moved = Event(
        ORIGIN_API,
        WORKER,
        Target(id="r-1", name="alice", type="PROVISIONING_REQUEST", property="STATUS"),
        "UPDATE",
        old="ready",
        new="claimed",
        user_id="alice",
    )
    first, second = await record_events(session, key, moved)
    assert first.seq < second.seq
    assert (first.event_name, second.event_name) == (
        "API_KEY.CREATE",
        "PROVISIONING_REQUEST.UPDATE",
    )
    stored = {
        event.id: event
        for event in await session.scalars(
            select(AuditEvent).where(AuditEvent.id.in_([first.id, second.id]))
        )
    }
    assert stored[first.id].seq == first.seq
    assert stored[first.id].user_id is None
    assert (stored[second.id].old, stored[second.id].new) == ("ready", "claimed")
    assert stored[second.id].user_id == "alice"
