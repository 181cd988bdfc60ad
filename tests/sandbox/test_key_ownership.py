"""Whose a key is: personal tokens, OAuth clients (tags), and the consent unknowns as switches."""

from typing import Any

import httpx
import pytest

from sandbox.errors import NOT_PERMITTED
from sandbox.state import SandboxState
from tests.helpers.sandbox_flows import (
    ADMIN,
    OBSERVER_ID,
    admin_key,
    audit_events,
    bearer,
    consent_token,
    join,
    mint_with,
    observer_token,
    set_switches,
)

KEYS = "/api/v2/tailnet/-/keys"
OBSERVER_TAG = "tag:tsprov-observer"


def key_id(secret: str) -> str:
    return secret.split("-")[2]


async def consent_key(api: httpx.AsyncClient, mode: str) -> str:
    """A key made under bob's consent: the one-time key, or one a reusable grant's token mints."""
    if mode == "once":
        secret: str = (await consent_token(api))["access_token"]
        return key_id(secret)
    await set_switches(api, grant_mode="reusable")
    token = (await consent_token(api, scope="auth_keys:create"))["access_token"]
    minted = await mint_with(api, token)
    assert minted.status_code == 200, minted.text
    created: str = minted.json()["id"]
    return created


async def read_key(api: httpx.AsyncClient, key: str, headers: dict[str, str]) -> httpx.Response:
    return await api.get(f"{KEYS}/{key}", headers=headers)


@pytest.mark.parametrize("mode", ["once", "reusable"])
@pytest.mark.parametrize(("switch", "named"), [("present", True), ("empty", False)])
async def test_consent_key_user_id_switch(
    api: httpx.AsyncClient, state: SandboxState, mode: str, switch: str, named: bool
) -> None:
    await set_switches(api, consent_key_user_id=switch)
    key = await consent_key(api, mode)
    bob = state.user_by_login("bob@example.com")
    assert bob is not None
    shown = (await read_key(api, key, ADMIN)).json()["userId"]
    assert shown == (bob.id if named else "")


async def test_consent_key_devices_belong_to_the_user_either_way(api: httpx.AsyncClient) -> None:
    await set_switches(api, consent_key_user_id="empty")
    secret = (await consent_token(api, login="carol@example.com"))["access_token"]
    assert (await join(api, secret)).json()["user"] == "carol@example.com"


@pytest.mark.parametrize("mode", ["once", "reusable"])
@pytest.mark.parametrize("switch", ["user", "app", "absent"])
async def test_consent_key_log_switch(api: httpx.AsyncClient, mode: str, switch: str) -> None:
    await set_switches(api, consent_key_log=switch)
    key = await consent_key(api, mode)
    events = await audit_events(api, event="API_KEY.CREATE", target=key)
    if switch == "absent":
        assert events == []
        return
    (event,) = events
    actor = event["actor"]
    if switch == "user":
        assert (actor["type"], actor["loginName"]) == ("USER", "bob@example.com")
    else:
        assert (actor["type"], actor["loginName"]) == ("OAUTH_CLIENT", "")
        assert actor["id"] == "kTestApp001CNTRL"


async def test_personal_token_keys_are_always_logged_with_the_user(
    api: httpx.AsyncClient,
) -> None:
    await set_switches(api, consent_key_log="absent")
    key = await admin_key(api)
    (event,) = await audit_events(api, event="API_KEY.CREATE", target=key["id"])
    assert event["actor"]["loginName"] == "alice@example.com"


async def observer_reading_keys(api: httpx.AsyncClient, scopes: str = "auth_keys") -> str:
    await set_switches(api, observer_scopes=["devices:core", "logs:configuration:read", scopes])
    return await observer_token(api)


@pytest.mark.parametrize(
    ("switch", "status"), [("read", 200), ("not_found", 404), ("forbidden", 403)]
)
async def test_observer_user_key_access_switch(
    api: httpx.AsyncClient, switch: str, status: int
) -> None:
    await set_switches(api, observer_user_key_access=switch)
    token = await observer_reading_keys(api)
    headers = bearer(token)
    users_key = key_id((await consent_token(api))["access_token"])
    tailnets_key = (await mint_with(api, token, tags=[OBSERVER_TAG])).json()
    read = await read_key(api, users_key, headers)
    assert read.status_code == status
    if status == 403:
        assert read.json() == {"message": NOT_PERMITTED}
    listed = (await api.get(KEYS, params={"all": "true"}, headers=headers)).json()["keys"]
    shown = {key["id"] for key in listed}
    assert (users_key in shown) is (switch == "read")
    assert tailnets_key["id"] in shown
    assert (await read_key(api, tailnets_key["id"], headers)).status_code == 200
    deleted = await api.delete(f"{KEYS}/{users_key}", headers=headers)
    assert deleted.status_code == status


async def test_a_client_token_lists_tailnet_keys_unless_all(api: httpx.AsyncClient) -> None:
    token = await observer_reading_keys(api)
    tailnets = (await mint_with(api, token, tags=[OBSERVER_TAG])).json()["id"]
    admins = (await admin_key(api))["id"]
    own = (await api.get(KEYS, headers=bearer(token))).json()["keys"]
    assert [key["id"] for key in own] == [tailnets]
    every = (await api.get(KEYS, params={"all": "true"}, headers=bearer(token))).json()["keys"]
    assert {key["id"] for key in every} == {tailnets, admins}


@pytest.mark.parametrize("tags", [[], ["tag:other"], [OBSERVER_TAG, "tag:other"]])
async def test_client_keys_need_the_clients_own_tags(
    api: httpx.AsyncClient, tags: list[str]
) -> None:
    token = await observer_reading_keys(api)
    refused = await mint_with(api, token, tags=tags)
    assert refused.status_code == 400
    assert set(refused.json()) == {"message"}


async def test_a_client_key_belongs_to_the_tailnet(api: httpx.AsyncClient) -> None:
    token = await observer_reading_keys(api)
    key = (await mint_with(api, token, tags=[OBSERVER_TAG])).json()
    assert key["userId"] == ""
    assert key["key"].startswith(f"tskey-auth-{key['id']}-")
    device = (await join(api, key["key"])).json()
    assert (device["user"], device["tags"]) == ("tagged-devices", [OBSERVER_TAG])


async def test_the_observer_reads_its_own_key_with_its_tags(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    headers = bearer(await observer_token(api))
    response = await read_key(api, OBSERVER_ID, headers)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    assert body["keyType"] == "client"
    assert body["tags"] == [OBSERVER_TAG]
    assert set(body["scopes"]) == {"devices:core", "logs:configuration:read"}
    assert body["userId"] == state.admin.id
    assert "key" not in body
    assert (await read_key(api, OBSERVER_ID, ADMIN)).json() == body


async def test_another_clients_key_needs_oauth_keys_read(api: httpx.AsyncClient) -> None:
    await set_switches(api, grant_mode="reusable")
    token = (await consent_token(api, scope="auth_keys:create"))["access_token"]
    response = await read_key(api, OBSERVER_ID, bearer(token))
    assert response.status_code == 403
