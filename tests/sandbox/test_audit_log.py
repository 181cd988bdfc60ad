"""`logging/configuration`: the envelope, the event shape, bounds, filters and what is logged."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from sandbox.state import SandboxState
from tests.helpers.sandbox_flows import (
    ADMIN,
    admin_key,
    audit_events,
    bearer,
    consent,
    consent_token,
    event_names,
    exchange,
    join,
    observer_token,
)

LOGS = "/api/v2/tailnet/-/logging/configuration"
EVENT_FIELDS = {
    "eventTime",
    "type",
    "deferredAt",
    "eventGroupID",
    "origin",
    "actor",
    "target",
    "action",
    "old",
    "new",
    "actionDetails",
    "error",
}


async def test_envelope_and_event_shape(api: httpx.AsyncClient) -> None:
    await admin_key(api)
    response = await api.get(
        LOGS,
        params={"start": "2000-01-01T00:00:00Z", "end": "2200-01-01T00:00:00Z"},
        headers=bearer(await observer_token(api)),
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"version", "tailnet", "logs"}
    assert body["version"] == "1.1"
    assert body["tailnet"] == "example.com"
    (event,) = body["logs"]
    assert set(event) == EVENT_FIELDS
    assert event["type"] == "CONFIG"
    assert event["deferredAt"] == "0001-01-01T00:00:00Z"
    assert event["eventTime"].endswith("Z")
    assert set(event["actor"]) == {"id", "type", "loginName", "displayName", "tags"}
    assert set(event["target"]) == {"id", "name", "type", "isEphemeral", "property"}
    assert (event["target"]["type"], event["action"]) == ("API_KEY", "CREATE")


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"start": "2000-01-01T00:00:00Z"},
        {"end": "2000-01-01T00:00:00Z"},
        {"start": "yesterday", "end": "2200-01-01T00:00:00Z"},
        {"start": "2000-01-01T00:00:00", "end": "2200-01-01T00:00:00Z"},
        {"start": "2200-01-01T00:00:00Z", "end": "2000-01-01T00:00:00Z"},
    ],
)
async def test_bounds_are_required_rfc3339(api: httpx.AsyncClient, params: dict[str, str]) -> None:
    response = await api.get(LOGS, params=params, headers=ADMIN)
    assert response.status_code == 400
    assert set(response.json()) == {"message"}


async def test_window_excludes_events_outside_it(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    await admin_key(api)
    later = state.clock.now() + timedelta(hours=1)
    params = {"start": later.isoformat(), "end": (later + timedelta(hours=1)).isoformat()}
    response = await api.get(LOGS, params=params, headers=ADMIN)
    assert response.json()["logs"] == []


async def test_consent_and_join_are_logged_in_time_order(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    secret = (await consent_token(api, login="bob@example.com"))["access_token"]
    state.clock.advance(5)
    device = (await join(api, secret)).json()
    events = await audit_events(api)
    assert event_names(events) == ["OAUTH_APP.APPROVE", "API_KEY.CREATE", "NODE.CREATE"]
    times = [datetime.fromisoformat(event["eventTime"]) for event in events]
    assert times == sorted(times)
    assert all(time.tzinfo == UTC for time in times)
    approve, key_create, node_create = events
    assert approve["actor"]["loginName"] == "bob@example.com"
    assert approve["actor"]["type"] == "USER"
    assert key_create["actor"]["loginName"] == "bob@example.com"
    assert key_create["target"]["id"] == secret.split("-")[2]
    assert node_create["origin"] == "NODE"
    assert node_create["actor"]["type"] == "USER"
    assert node_create["actor"]["loginName"] == "bob@example.com"
    assert node_create["target"]["id"] == device["nodeId"]
    assert node_create["target"]["type"] == "NODE"
    assert secret not in str(events)


async def test_denial_is_logged_with_an_error(api: httpx.AsyncClient) -> None:
    await consent(api, decision="deny")
    (event,) = await audit_events(api)
    assert event_names([event]) == ["OAUTH_APP.APPROVE"]
    assert event["error"]


async def test_revocations_and_deletions_are_logged(api: httpx.AsyncClient) -> None:
    code = (await consent(api))["code"]
    await exchange(api, code)
    await exchange(api, code)
    key = await admin_key(api)
    await api.delete(f"/api/v2/tailnet/-/keys/{key['id']}", headers=ADMIN)
    device = (await join(api, (await admin_key(api))["key"])).json()
    await api.delete(f"/api/v2/device/{device['nodeId']}", headers=ADMIN)
    names = event_names(await audit_events(api))
    for expected in ("API_KEY.REVOKE", "API_KEY.DELETE", "NODE.DELETE"):
        assert expected in names


async def test_filters_by_event_actor_and_target(api: httpx.AsyncClient) -> None:
    bob_key = (await consent_token(api, login="bob@example.com"))["access_token"]
    await consent_token(api, login="carol@example.com")
    device = (await join(api, bob_key)).json()
    by_event = await audit_events(api, event=["NODE.CREATE", "OAUTH_APP.APPROVE"])
    assert sorted(event_names(by_event)) == [
        "NODE.CREATE",
        "OAUTH_APP.APPROVE",
        "OAUTH_APP.APPROVE",
    ]
    by_actor = await audit_events(api, actor="carol@example.com")
    assert event_names(by_actor) == ["OAUTH_APP.APPROVE", "API_KEY.CREATE"]
    by_target = await audit_events(api, target=device["nodeId"])
    assert event_names(by_target) == ["NODE.CREATE"]
    both = await audit_events(api, actor="carol@example.com", event="NODE.CREATE")
    assert both == []
