"""Reusable grants (`auth_keys:create`): access tokens, refresh rotation and replay revocation."""

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from sandbox.app import create_app
from sandbox.state import SandboxState
from tests.helpers.sandbox_flows import (
    ADMIN,
    audit_events,
    bearer,
    consent,
    consent_token,
    event_names,
    exchange,
    refresh,
)
from tests.sandbox.conftest import SettingsFactory

KEY_BODY: dict[str, Any] = {"capabilities": {"devices": {"create": {}}}, "expirySeconds": 600}


@pytest.fixture
def sandbox_app(make_settings: SettingsFactory) -> FastAPI:
    """A sandbox whose consents yield reusable grants with a 120 s access token."""
    return create_app(make_settings(grant_mode="reusable", access_token_ttl=120))


async def mint(api: httpx.AsyncClient, access_token: str) -> httpx.Response:
    return await api.post("/api/v2/tailnet/-/keys", json=KEY_BODY, headers=bearer(access_token))


async def test_reusable_grant_answers_access_and_refresh_tokens(api: httpx.AsyncClient) -> None:
    body = await consent_token(api, scope="auth_keys:create")
    assert set(body) == {"access_token", "token_type", "expires_in", "scope", "refresh_token"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 120
    assert body["scope"] == "auth_keys:create"
    assert not body["access_token"].startswith("tskey-auth-")


async def test_default_app_scope_follows_the_grant_mode(api: httpx.AsyncClient) -> None:
    apps = (await api.get("/api/v2/tailnet/-/oauth-apps", headers=ADMIN)).json()["oauthApps"]
    assert apps[0]["scopes"] == ["auth_keys:create"]


async def test_access_token_mints_keys_owned_by_the_user(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    token = await consent_token(api, scope="auth_keys:create", login="bob@example.com")
    response = await mint(api, token["access_token"])
    assert response.status_code == 200
    bob = state.user_by_login("bob@example.com")
    assert bob is not None
    assert response.json()["userId"] == bob.id
    assert response.json()["key"].startswith("tskey-auth-")


async def test_access_token_may_only_create_keys(api: httpx.AsyncClient) -> None:
    headers = bearer((await consent_token(api, scope="auth_keys:create"))["access_token"])
    for path in ("/api/v2/tailnet/-/keys", "/api/v2/tailnet/-/devices"):
        response = await api.get(path, headers=headers)
        assert response.status_code == 403
        assert set(response.json()) == {"message"}


async def test_access_token_expires_after_its_ttl(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    access = (await consent_token(api, scope="auth_keys:create"))["access_token"]
    state.clock.advance(119)
    assert (await mint(api, access)).status_code == 200
    state.clock.advance(2)
    assert (await mint(api, access)).status_code == 401


async def test_refresh_rotates_both_tokens(api: httpx.AsyncClient) -> None:
    first = await consent_token(api, scope="auth_keys:create")
    response = await refresh(api, first["refresh_token"])
    assert response.status_code == 200
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["expires_in"] == 120
    assert (await mint(api, second["access_token"])).status_code == 200


async def test_replayed_refresh_token_revokes_the_whole_grant(api: httpx.AsyncClient) -> None:
    first = await consent_token(api, scope="auth_keys:create")
    second = (await refresh(api, first["refresh_token"])).json()
    replay = await refresh(api, first["refresh_token"])
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert (await mint(api, second["access_token"])).status_code == 401
    assert (await mint(api, first["access_token"])).status_code == 401
    assert (await refresh(api, second["refresh_token"])).json()["error"] == "invalid_grant"


async def test_replayed_code_revokes_the_grant(api: httpx.AsyncClient) -> None:
    code = (await consent(api, scope="auth_keys:create"))["code"]
    tokens = (await exchange(api, code)).json()
    assert (await exchange(api, code)).json()["error"] == "invalid_grant"
    assert (await mint(api, tokens["access_token"])).status_code == 401
    assert (await refresh(api, tokens["refresh_token"])).json()["error"] == "invalid_grant"


async def test_refresh_may_narrow_but_not_widen_scope(api: httpx.AsyncClient) -> None:
    first = await consent_token(api, scope="auth_keys:create")
    widened = await api.post(
        "/api/v2/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "scope": "devices:core",
        },
        auth=("kTestApp001CNTRL", "tskey-app-test-app-secret"),
    )
    assert widened.json()["error"] == "invalid_scope"
    assert (await refresh(api, first["refresh_token"])).status_code == 200


async def test_unknown_refresh_token_is_invalid_grant(api: httpx.AsyncClient) -> None:
    response = await refresh(api, "nonsense")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_identity_field_also_on_refresh(api: httpx.AsyncClient, state: SandboxState) -> None:
    state.switches.identity_field = "user"
    first = await consent_token(api, scope="auth_keys:create", login="carol@example.com")
    assert first["user"] == "carol@example.com"
    assert (await refresh(api, first["refresh_token"])).json()["user"] == "carol@example.com"


async def test_switching_grant_mode_at_run_time(api: httpx.AsyncClient) -> None:
    patched = await api.patch("/sandbox/switches", json={"grant_mode": "once"})
    assert patched.json()["grant_mode"] == "once"
    body = await consent_token(api, scope="auth_keys:create:once")
    assert body["access_token"].startswith("tskey-auth-")
    assert "refresh_token" not in body


async def test_deleting_the_app_revokes_its_grants(api: httpx.AsyncClient) -> None:
    tokens = await consent_token(api, scope="auth_keys:create")
    deleted = await api.delete("/api/v2/tailnet/-/oauth-apps/kTestApp001CNTRL", headers=ADMIN)
    assert deleted.status_code == 200
    assert (await mint(api, tokens["access_token"])).status_code == 401
    assert (await refresh(api, tokens["refresh_token"])).json()["error"] == "invalid_client"


async def test_app_deletion_events_share_one_group(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    state.switches.oauth_app_events = True
    await consent_token(api, scope="auth_keys:create")
    await api.delete("/api/v2/tailnet/-/oauth-apps/kTestApp001CNTRL", headers=ADMIN)
    events = await audit_events(api, event=["OAUTH_APP.REVOKE", "OAUTH_APP.DELETE"])
    assert event_names(events) == ["OAUTH_APP.REVOKE", "OAUTH_APP.DELETE"]
    assert events[0]["eventGroupID"] == events[1]["eventGroupID"]
