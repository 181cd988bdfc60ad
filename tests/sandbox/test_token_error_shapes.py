"""The token endpoint's refusals in both shapes: RFC 6749 JSON, or Tailscale's `{"message"}`."""

import httpx
import pytest

from tests.helpers.sandbox_flows import (
    APP_ID,
    APP_SECRET,
    OBSERVER_ID,
    OBSERVER_SECRET,
    REDIRECT_URI,
    TOKEN,
    consent,
    consent_token,
    exchange,
    refresh,
    set_switches,
)


def assert_message(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert set(response.json()) == {"message"}
    assert response.headers["cache-control"] == "no-store"
    message: str = response.json()["message"]
    return message


def assert_rfc6749(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error", "error_description"}
    assert response.json()["error"] == error


async def spent_code(api: httpx.AsyncClient) -> str:
    code = (await consent(api))["code"]
    assert (await exchange(api, code)).status_code == 200
    return code


async def test_default_shape_is_rfc6749(api: httpx.AsyncClient) -> None:
    assert_rfc6749(await exchange(api, await spent_code(api)), 400, "invalid_grant")
    assert_rfc6749(await exchange(api, "unknown"), 400, "invalid_grant")
    wrong_secret = await exchange(api, "x", client_secret="tskey-app-wrong")
    assert_rfc6749(wrong_secret, 401, "invalid_client")


async def test_message_shape_for_spent_and_unknown_codes(api: httpx.AsyncClient) -> None:
    await set_switches(api, token_error_shape="message")
    message = assert_message(await exchange(api, await spent_code(api)), 403)
    assert "already been used" in message
    assert_message(await exchange(api, "unknown"), 403)


async def test_message_shape_for_bad_app_credentials(api: httpx.AsyncClient) -> None:
    await set_switches(api, token_error_shape="message")
    code = (await consent(api))["code"]
    response = await exchange(api, code, client_secret="tskey-app-wrong")
    assert assert_message(response, 401) == "API token invalid"
    assert "www-authenticate" not in response.headers
    assert (await exchange(api, code)).status_code == 200


async def test_message_shape_for_a_malformed_request(api: httpx.AsyncClient) -> None:
    await set_switches(api, token_error_shape="message")
    code = (await consent(api))["code"]
    data = {"grant_type": "authorization_code", "code": code, "client_id": APP_ID}
    response = await api.post(TOKEN, data={**data, "client_secret": APP_SECRET})
    assert "redirect_uri" in assert_message(response, 400)


async def test_message_shape_for_refresh_refusals(api: httpx.AsyncClient) -> None:
    await set_switches(api, grant_mode="reusable", token_error_shape="message")
    first = await consent_token(api, scope="auth_keys:create")
    assert (await refresh(api, first["refresh_token"])).status_code == 200
    assert_message(await refresh(api, first["refresh_token"]), 403)
    assert_message(await refresh(api, "nonsense"), 403)


async def test_forced_invalid_grant_takes_the_shape(api: httpx.AsyncClient) -> None:
    await set_switches(api, token_error_shape="message", forced_oauth_error="invalid_grant")
    code = (await consent(api))["code"]
    assert_message(await exchange(api, code), 403)


@pytest.mark.parametrize("shape", ["rfc6749", "message"])
async def test_client_credentials_refusals_are_always_messages(
    api: httpx.AsyncClient, shape: str
) -> None:
    await set_switches(api, token_error_shape=shape)
    bad = await api.post(
        TOKEN, data={"grant_type": "client_credentials"}, auth=(OBSERVER_ID, "tskey-client-x")
    )
    assert assert_message(bad, 401) == "API token invalid"
    unnamed = await api.post(TOKEN, data={"client_id": OBSERVER_ID, "client_secret": "wrong"})
    assert_message(unnamed, 401)
    widened = await api.post(TOKEN, data={"scope": "all"}, auth=(OBSERVER_ID, OBSERVER_SECRET))
    assert assert_message(widened, 403) == "OAuth client cannot grant scopes [all]"


async def test_an_app_still_names_its_grant_type(api: httpx.AsyncClient) -> None:
    response = await api.post(
        TOKEN,
        data={"code": "x", "redirect_uri": REDIRECT_URI},
        auth=(APP_ID, APP_SECRET),
    )
    assert_rfc6749(response, 400, "invalid_request")
