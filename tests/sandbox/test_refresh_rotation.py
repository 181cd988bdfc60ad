"""The `rotate_refresh_tokens` switch: a Tailscale that keeps refresh tokens instead."""

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from sandbox.app import create_app
from tests.helpers.sandbox_flows import bearer, consent_token, refresh
from tests.sandbox.conftest import SettingsFactory

KEY_BODY: dict[str, Any] = {"capabilities": {"devices": {"create": {}}}, "expirySeconds": 600}


@pytest.fixture
def sandbox_app(make_settings: SettingsFactory) -> FastAPI:
    return create_app(make_settings(grant_mode="reusable"))


async def keep_refresh_tokens(api: httpx.AsyncClient) -> None:
    patched = await api.patch("/sandbox/switches", json={"rotate_refresh_tokens": False})
    assert patched.status_code == 200
    assert patched.json()["rotate_refresh_tokens"] is False


async def test_without_rotation_a_refresh_answers_no_refresh_token(
    api: httpx.AsyncClient,
) -> None:
    await keep_refresh_tokens(api)
    first = await consent_token(api, scope="auth_keys:create")
    assert "refresh_token" in first  # the consent itself still yields one
    answer = await refresh(api, first["refresh_token"])
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["access_token"] != first["access_token"]
    minted = await api.post(
        "/api/v2/tailnet/-/keys", json=KEY_BODY, headers=bearer(body["access_token"])
    )
    assert minted.status_code == 200


async def test_without_rotation_the_same_refresh_token_keeps_working(
    api: httpx.AsyncClient,
) -> None:
    await keep_refresh_tokens(api)
    first = await consent_token(api, scope="auth_keys:create")
    tokens = {(await refresh(api, first["refresh_token"])).json()["access_token"] for _ in range(3)}
    assert len(tokens) == 3
    # Reuse is not a replay here, so nothing was revoked: the first access token still mints.
    minted = await api.post(
        "/api/v2/tailnet/-/keys", json=KEY_BODY, headers=bearer(first["access_token"])
    )
    assert minted.status_code == 200


async def test_switching_rotation_back_on_spends_the_token_at_its_next_use(
    api: httpx.AsyncClient,
) -> None:
    await keep_refresh_tokens(api)
    first = await consent_token(api, scope="auth_keys:create")
    assert (await refresh(api, first["refresh_token"])).status_code == 200
    await api.patch("/sandbox/switches", json={"rotate_refresh_tokens": True})
    rotated = (await refresh(api, first["refresh_token"])).json()
    assert rotated["refresh_token"] != first["refresh_token"]
    replay = await refresh(api, first["refresh_token"])
    assert replay.json()["error"] == "invalid_grant"


async def test_reset_turns_rotation_back_on(api: httpx.AsyncClient) -> None:
    await keep_refresh_tokens(api)
    assert (await api.post("/sandbox/reset")).status_code == 204
    assert (await api.get("/sandbox/switches")).json()["rotate_refresh_tokens"] is True
