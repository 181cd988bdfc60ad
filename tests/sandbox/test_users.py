"""Users: `GET /users/{id}`, `GET /tailnet/{t}/users`, and an observer given `users:read`."""

import httpx
import pytest

from sandbox.app import create_app
from sandbox.state import SandboxState
from tests.helpers.sandbox_flows import (
    ADMIN,
    SANDBOX_URL,
    bearer,
    consent_token,
    join,
    observer_token,
    set_switches,
)
from tests.sandbox.conftest import SettingsFactory

USER_FIELDS = {
    "id",
    "displayName",
    "loginName",
    "profilePicUrl",
    "tailnetId",
    "created",
    "type",
    "role",
    "status",
    "deviceCount",
    "lastSeen",
    "currentlyConnected",
}
USERS = "/api/v2/tailnet/-/users"


async def test_a_user_by_id(api: httpx.AsyncClient, state: SandboxState) -> None:
    bob = state.user_by_login("bob@example.com")
    assert bob is not None
    await join(api, (await consent_token(api, login="bob@example.com"))["access_token"])
    response = await api.get(f"/api/v2/users/{bob.id}", headers=ADMIN)
    assert response.status_code == 200
    user = response.json()
    assert set(user) == USER_FIELDS
    assert (user["id"], user["loginName"], user["displayName"]) == (bob.id, bob.login_name, "Bob")
    assert (user["role"], user["type"], user["status"]) == ("member", "member", "active")
    assert (user["deviceCount"], user["currentlyConnected"]) == (1, True)
    assert user["tailnetId"] == "example.com"


async def test_an_unknown_user_is_404(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v2/users/uNobodyCNTRL", headers=ADMIN)
    assert response.status_code == 404
    assert set(response.json()) == {"message"}


@pytest.mark.parametrize(
    ("params", "logins"),
    [
        ({}, ["alice@example.com", "bob@example.com", "carol@example.com"]),
        ({"role": "admin"}, ["alice@example.com"]),
        ({"role": "member"}, ["bob@example.com", "carol@example.com"]),
        ({"role": "auditor"}, []),
        ({"type": "shared"}, []),
        (
            {"type": "all", "role": "all"},
            ["alice@example.com", "bob@example.com", "carol@example.com"],
        ),
    ],
)
async def test_listing_by_type_and_role(
    api: httpx.AsyncClient, params: dict[str, str], logins: list[str]
) -> None:
    response = await api.get(USERS, params=params, headers=ADMIN)
    assert response.status_code == 200
    assert sorted(user["loginName"] for user in response.json()["users"]) == logins


@pytest.mark.parametrize("params", [{"type": "guest"}, {"role": "king"}])
async def test_bad_listing_filters_are_400(api: httpx.AsyncClient, params: dict[str, str]) -> None:
    assert (await api.get(USERS, params=params, headers=ADMIN)).status_code == 400


async def test_the_observer_reads_users_only_when_given_users_read(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    headers = bearer(await observer_token(api))
    assert (await api.get(f"/api/v2/users/{state.admin.id}", headers=headers)).status_code == 403
    await set_switches(api, observer_scopes=["devices:core", "users:read"])
    response = await api.get(f"/api/v2/users/{state.admin.id}", headers=headers)
    assert response.status_code == 200
    assert response.json()["loginName"] == "alice@example.com"
    assert (await api.get(USERS, headers=headers)).status_code == 200


async def test_a_narrowed_token_loses_what_its_client_loses(api: httpx.AsyncClient) -> None:
    await set_switches(api, observer_scopes=["devices:core", "users:read"])
    narrowed = bearer(await observer_token(api, scope="users:read"))
    assert (await api.get(USERS, headers=narrowed)).status_code == 200
    await set_switches(api, observer_scopes=["devices:core"])
    assert (await api.get(USERS, headers=narrowed)).status_code == 403


async def test_observer_scopes_as_a_setting(make_settings: SettingsFactory) -> None:
    app = create_app(make_settings(observer_scopes="devices:core,users:read"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=SANDBOX_URL) as client:
        headers = bearer(await observer_token(client))
        assert (await client.get(USERS, headers=headers)).status_code == 200


async def test_scopes_needing_tags_are_refused_for_an_untagged_observer(
    make_settings: SettingsFactory,
) -> None:
    app = create_app(make_settings(observer_scopes="users:read", observer_tags=""))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=SANDBOX_URL) as client:
        refused = await client.patch("/sandbox/switches", json={"observer_scopes": ["auth_keys"]})
        assert refused.status_code == 400
        assert (await client.get("/sandbox/switches")).json()["observer_scopes"] == ["users:read"]
