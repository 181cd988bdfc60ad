"""The log's filters as Tailscale documents them: actor ids or `~search`, target substrings,
and `event` names from a closed list."""

import httpx
import pytest

from sandbox.state import SandboxState
from tests.helpers.sandbox_flows import (
    ADMIN,
    admin_key,
    audit_events,
    consent_token,
    event_names,
    join,
    set_switches,
)

LOGS = "/api/v2/tailnet/-/logging/configuration"
WINDOW = {"start": "2000-01-01T00:00:00Z", "end": "2200-01-01T00:00:00Z"}


async def bob_and_carol_joined(api: httpx.AsyncClient) -> dict[str, str]:
    bob_key = (await consent_token(api, login="bob@example.com"))["access_token"]
    await consent_token(api, login="carol@example.com")
    device: dict[str, str] = (await join(api, bob_key, hostname="bobs-box")).json()
    return device


async def test_actor_is_an_exact_id(api: httpx.AsyncClient, state: SandboxState) -> None:
    await bob_and_carol_joined(api)
    carol = state.user_by_login("carol@example.com")
    assert carol is not None
    assert event_names(await audit_events(api, actor=carol.id)) == ["API_KEY.CREATE"]
    assert await audit_events(api, actor=carol.id[:-1]) == []
    # A login name is no id: it finds nothing without the `~` of a search.
    assert await audit_events(api, actor="carol@example.com") == []


@pytest.mark.parametrize(
    ("search", "logins"),
    [
        ("~carol", {"carol@example.com"}),
        ("~CAROL@EXAMPLE", {"carol@example.com"}),
        ("~Bob", {"bob@example.com"}),
        ("~example.com", {"bob@example.com", "carol@example.com"}),
        ("~nobody", set()),
    ],
)
async def test_actor_search_matches_login_or_display_name(
    api: httpx.AsyncClient, search: str, logins: set[str]
) -> None:
    await bob_and_carol_joined(api)
    events = await audit_events(api, actor=search)
    assert {event["actor"]["loginName"] for event in events} == logins


async def test_repeated_actors_are_alternatives(api: httpx.AsyncClient) -> None:
    await bob_and_carol_joined(api)
    events = await audit_events(api, actor=["~bob", "~carol"])
    assert len(events) == 3


async def test_target_is_a_substring_of_id_or_name(api: httpx.AsyncClient) -> None:
    device = await bob_and_carol_joined(api)
    by_id_part = await audit_events(api, target=device["nodeId"][1:8])
    assert event_names(by_id_part) == ["NODE.CREATE"]
    by_name_part = await audit_events(api, target="bobs-bo")
    assert event_names(by_name_part) == ["NODE.CREATE"]
    assert await audit_events(api, target="no-such-thing") == []


async def test_different_filters_must_all_hold(api: httpx.AsyncClient) -> None:
    await bob_and_carol_joined(api)
    assert await audit_events(api, actor="~carol", event="NODE.CREATE") == []
    both = await audit_events(api, actor="~bob", event="NODE.CREATE")
    assert event_names(both) == ["NODE.CREATE"]


@pytest.mark.parametrize(
    "name", ["NODE.EXPLODE", "node.create", "API_KEY.DELETE", "NODE", "OAUTH_APP.APPROVE"]
)
async def test_unknown_event_names_are_400(api: httpx.AsyncClient, name: str) -> None:
    response = await api.get(LOGS, params={**WINDOW, "event": name}, headers=ADMIN)
    assert response.status_code == 400
    assert set(response.json()) == {"message"}
    assert name in response.json()["message"]


async def test_known_names_are_accepted_even_when_nothing_matches(
    api: httpx.AsyncClient,
) -> None:
    names = ["USER.CREATE", "NODE.UPDATE.ATTRIBUTES", "TAILNET.ENABLE.MACHINE_APPROVAL_NEEDED"]
    response = await api.get(LOGS, params={**WINDOW, "event": names}, headers=ADMIN)
    assert response.status_code == 200
    assert response.json()["logs"] == []


async def test_oauth_app_names_are_accepted_while_those_events_are_emitted(
    api: httpx.AsyncClient,
) -> None:
    await set_switches(api, oauth_app_events=True)
    await consent_token(api)
    events = await audit_events(api, event="OAUTH_APP.APPROVE")
    assert event_names(events) == ["OAUTH_APP.APPROVE"]


async def test_three_part_names_select_property_events(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    device = (await join(api, (await admin_key(api))["key"])).json()
    path = f"/api/v2/device/{device['nodeId']}/attributes/custom:team"
    await api.post(path, json={"value": "blue"}, headers=ADMIN)
    await api.post(path, json={"value": "red"}, headers=ADMIN)
    assert event_names(await audit_events(api, event="NODE.CREATE")) == ["NODE.CREATE"]
    created = await audit_events(api, event="NODE.CREATE.ATTRIBUTES")
    updated = await audit_events(api, event="NODE.UPDATE.ATTRIBUTES")
    assert [e["new"] for e in created + updated] == [
        {"custom:team": "blue"},
        {"custom:team": "red"},
    ]
    assert updated[0]["old"] == {"custom:team": "blue"}
    assert created[0]["target"]["property"] == "ATTRIBUTES"
