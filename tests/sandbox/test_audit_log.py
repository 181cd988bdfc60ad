"""`logging/configuration`: the envelope, the event shape, its bounds, and what is logged."""

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
    set_switches,
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
    assert event_names(events) == ["API_KEY.CREATE", "NODE.CREATE"]
    times = [datetime.fromisoformat(event["eventTime"]) for event in events]
    assert times == sorted(times)
    assert all(time.tzinfo == UTC for time in times)
    key_create, node_create = events
    assert key_create["actor"]["loginName"] == "bob@example.com"
    assert key_create["actor"]["type"] == "USER"
    assert key_create["target"]["id"] == secret.split("-")[2]
    assert node_create["origin"] == "NODE"
    assert node_create["actor"]["type"] == "USER"
    assert node_create["actor"]["loginName"] == "bob@example.com"
    assert node_create["target"]["id"] == device["nodeId"]
    assert node_create["target"]["type"] == "NODE"
    assert secret not in str(events)


@pytest.mark.parametrize("emitted", [True, False])
async def test_consent_events_follow_their_switch(api: httpx.AsyncClient, emitted: bool) -> None:
    await set_switches(api, oauth_app_events=emitted)
    await consent(api, login="carol@example.com", decision="deny")
    await consent_token(api, login="bob@example.com")
    names = event_names(await audit_events(api))
    if not emitted:
        assert names == ["API_KEY.CREATE"]
        return
    assert names == ["OAUTH_APP.APPROVE", "OAUTH_APP.APPROVE", "API_KEY.CREATE"]
    denial, approval, _ = await audit_events(api)
    assert (denial["actor"]["loginName"], bool(denial["error"])) == ("carol@example.com", True)
    assert (approval["actor"]["loginName"], approval["error"]) == ("bob@example.com", "")
    assert approval["origin"] == "IDENTITY_PROVIDER"


async def test_revocations_and_deletions_are_logged(api: httpx.AsyncClient) -> None:
    code = (await consent(api))["code"]
    replayed = (await exchange(api, code)).json()["access_token"].split("-")[2]
    await exchange(api, code)
    key = await admin_key(api)
    await api.delete(f"/api/v2/tailnet/-/keys/{key['id']}", headers=ADMIN)
    device = (await join(api, (await admin_key(api))["key"])).json()
    await api.delete(f"/api/v2/device/{device['nodeId']}", headers=ADMIN)
    revoked = await audit_events(api, event="API_KEY.REVOKE")
    # A deletion is a revocation in Tailscale's log, which has no API_KEY.DELETE.
    assert [(e["target"]["id"], e["origin"]) for e in revoked] == [
        (replayed, "CONTROL"),
        (key["id"], "CONFIG_API"),
    ]
    assert revoked[1]["actor"]["loginName"] == "alice@example.com"
    assert event_names(await audit_events(api, event="NODE.DELETE")) == ["NODE.DELETE"]


@pytest.mark.parametrize("named", [True, False])
async def test_node_create_names_the_key_per_its_switch(
    api: httpx.AsyncClient, named: bool
) -> None:
    await set_switches(api, node_create_key_id=named)
    key = await admin_key(api)
    await join(api, key["key"])
    (event,) = await audit_events(api, event="NODE.CREATE")
    assert event["new"].get("keyId") == (key["id"] if named else None)
    assert event["new"]["user"] == "alice@example.com"
