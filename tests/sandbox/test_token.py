"""The token endpoint: client authentication, authorization codes, PKCE and RFC 6749 errors."""

import base64
from urllib.parse import quote

import httpx
import pytest

from sandbox.state import SandboxState
from tests.helpers.sandbox_flows import (
    ADMIN,
    APP_ID,
    APP_SECRET,
    OBSERVER_ID,
    OBSERVER_SECRET,
    REDIRECT_URI,
    TOKEN,
    bearer,
    consent,
    consent_token,
    exchange,
    join,
    pkce_pair,
)


def assert_oauth_error(response: httpx.Response, error: str, status: int = 400) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "error_description"}
    assert body["error"] == error
    assert response.headers["cache-control"] == "no-store"


async def test_once_grant_is_a_one_time_auth_key(api: httpx.AsyncClient) -> None:
    body = await consent_token(api)
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["access_token"].startswith("tskey-auth-")
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "auth_keys:create:once"


async def test_once_key_is_in_the_key_store_owned_by_the_consenting_user(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    secret = (await consent_token(api, login="carol@example.com"))["access_token"]
    key_id = secret.split("-")[2]
    key = (await api.get(f"/api/v2/tailnet/-/keys/{key_id}", headers=ADMIN)).json()
    carol = state.user_by_login("carol@example.com")
    assert carol is not None
    assert key["userId"] == carol.id
    assert key["capabilities"]["devices"]["create"]["reusable"] is False
    assert key["expirySeconds"] == 3600
    assert "key" not in key


async def test_once_access_token_is_not_an_api_token(api: httpx.AsyncClient) -> None:
    secret = (await consent_token(api))["access_token"]
    response = await api.get("/api/v2/tailnet/-/keys", headers=bearer(secret))
    assert response.status_code == 401
    assert set(response.json()) == {"message"}


async def test_response_is_not_cacheable(api: httpx.AsyncClient) -> None:
    code = (await consent(api))["code"]
    response = await exchange(api, code)
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"


async def test_basic_client_authentication(api: httpx.AsyncClient) -> None:
    code = (await consent(api))["code"]
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    response = await api.post(TOKEN, data=data, auth=(APP_ID, APP_SECRET))
    assert response.status_code == 200


async def test_basic_credentials_are_form_decoded(
    api: httpx.AsyncClient,
) -> None:
    code = (await consent(api))["code"]
    raw = f"{quote(APP_ID, safe='')}:{quote(APP_SECRET, safe='')}".replace("-", "%2D")
    header = {"Authorization": "Basic " + base64.b64encode(raw.encode()).decode()}
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    assert (await api.post(TOKEN, data=data, headers=header)).status_code == 200


@pytest.mark.parametrize(
    "credentials",
    [
        {"client_id": APP_ID, "client_secret": "wrong"},
        {"client_id": "kNobodyCNTRL", "client_secret": APP_SECRET},
        {"client_id": APP_ID},
        {},
    ],
)
async def test_bad_client_authentication_is_invalid_client(
    api: httpx.AsyncClient, credentials: dict[str, str]
) -> None:
    code = (await consent(api))["code"]
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    response = await api.post(TOKEN, data={**data, **credentials})
    assert_oauth_error(response, "invalid_client", 401)
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_two_authentication_methods_are_invalid_request(api: httpx.AsyncClient) -> None:
    code = (await consent(api))["code"]
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "client_secret": APP_SECRET,
    }
    response = await api.post(TOKEN, data=data, auth=(APP_ID, APP_SECRET))
    assert_oauth_error(response, "invalid_request")


async def test_code_is_single_use_and_replay_revokes_the_key(api: httpx.AsyncClient) -> None:
    code = (await consent(api))["code"]
    secret = (await exchange(api, code)).json()["access_token"]
    assert_oauth_error(await exchange(api, code), "invalid_grant")
    refused = await join(api, secret)
    assert refused.status_code == 400
    key = (await api.get(f"/api/v2/tailnet/-/keys/{secret.split('-')[2]}", headers=ADMIN)).json()
    assert key["invalid"] is True
    assert key["revoked"] != "0001-01-01T00:00:00Z"


async def test_code_lives_ten_minutes(api: httpx.AsyncClient, state: SandboxState) -> None:
    young, old = (await consent(api))["code"], (await consent(api))["code"]
    state.clock.advance(9 * 60)
    assert (await exchange(api, young)).status_code == 200
    state.clock.advance(61)
    assert_oauth_error(await exchange(api, old), "invalid_grant")


async def test_unknown_code_is_invalid_grant(api: httpx.AsyncClient) -> None:
    assert_oauth_error(await exchange(api, "not-a-code"), "invalid_grant")


async def test_redirect_uri_must_match_exactly(api: httpx.AsyncClient) -> None:
    code = (await consent(api))["code"]
    other = await exchange(api, code, redirect_uri="http://localhost:8000/callback")
    assert_oauth_error(other, "invalid_grant")
    assert (await exchange(api, code)).status_code == 200


async def test_missing_redirect_uri_is_invalid_request(api: httpx.AsyncClient) -> None:
    code = (await consent(api))["code"]
    data = {"grant_type": "authorization_code", "code": code}
    response = await api.post(TOKEN, data=data, auth=(APP_ID, APP_SECRET))
    assert_oauth_error(response, "invalid_request")


async def test_pkce_is_checked_when_a_challenge_was_sent(api: httpx.AsyncClient) -> None:
    verifier, challenge = pkce_pair()
    pkce = {"code_challenge": challenge, "code_challenge_method": "S256"}
    code = (await consent(api, **pkce))["code"]
    assert_oauth_error(await exchange(api, code), "invalid_grant")
    wrong, _ = pkce_pair()
    assert_oauth_error(await exchange(api, code, code_verifier=wrong), "invalid_grant")
    assert (await exchange(api, code, code_verifier=verifier)).status_code == 200


async def test_verifier_is_ignored_without_a_challenge(api: httpx.AsyncClient) -> None:
    code = (await consent(api))["code"]
    verifier, _ = pkce_pair()
    assert (await exchange(api, code, code_verifier=verifier)).status_code == 200


async def test_pkce_known_vector(api: httpx.AsyncClient) -> None:
    # RFC 7636 appendix B.
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    pkce = {"code_challenge": challenge, "code_challenge_method": "S256"}
    code = (await consent(api, **pkce))["code"]
    assert (await exchange(api, code, code_verifier=verifier)).status_code == 200


async def test_code_of_another_client_is_invalid_grant(api: httpx.AsyncClient) -> None:
    created = await api.post(
        "/api/v2/tailnet/-/oauth-apps",
        json={"name": "other", "redirectURIs": [REDIRECT_URI], "scopes": ["auth_keys:create:once"]},
        headers=ADMIN,
    )
    other = created.json()
    code = (await consent(api))["code"]
    response = await exchange(api, code, client_id=other["id"], client_secret=other["clientSecret"])
    assert_oauth_error(response, "invalid_grant")


async def test_observer_may_not_redeem_codes(api: httpx.AsyncClient) -> None:
    code = (await consent(api))["code"]
    response = await exchange(api, code, client_id=OBSERVER_ID, client_secret=OBSERVER_SECRET)
    assert_oauth_error(response, "unauthorized_client")


async def test_unsupported_and_missing_grant_type(api: httpx.AsyncClient) -> None:
    auth = (APP_ID, APP_SECRET)
    response = await api.post(TOKEN, data={"grant_type": "password"}, auth=auth)
    assert_oauth_error(response, "unsupported_grant_type")
    assert_oauth_error(await api.post(TOKEN, data={}, auth=auth), "invalid_request")


async def test_body_must_be_form_encoded(api: httpx.AsyncClient) -> None:
    response = await api.post(TOKEN, json={"grant_type": "client_credentials"})
    assert_oauth_error(response, "invalid_request")


async def test_repeated_parameter_is_invalid_request(api: httpx.AsyncClient) -> None:
    body = "grant_type=client_credentials&grant_type=client_credentials"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    response = await api.post(
        TOKEN, content=body, headers=headers, auth=(OBSERVER_ID, OBSERVER_SECRET)
    )
    assert_oauth_error(response, "invalid_request")


async def test_forced_invalid_grant(api: httpx.AsyncClient, state: SandboxState) -> None:
    code = (await consent(api))["code"]
    state.switches.forced_oauth_error = "invalid_grant"
    assert_oauth_error(await exchange(api, code), "invalid_grant")
    state.switches.forced_oauth_error = None
    assert (await exchange(api, code)).status_code == 200


async def test_forced_invalid_client(api: httpx.AsyncClient, state: SandboxState) -> None:
    code = (await consent(api))["code"]
    state.switches.forced_oauth_error = "invalid_client"
    assert_oauth_error(await exchange(api, code), "invalid_client", 401)


async def test_identity_field_carries_the_login(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    state.switches.identity_field = "login_name"
    body = await consent_token(api, login="alice@example.com")
    assert body["login_name"] == "alice@example.com"


async def test_no_identity_field_by_default(api: httpx.AsyncClient) -> None:
    body = await consent_token(api)
    assert "login_name" not in body
