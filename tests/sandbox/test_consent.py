"""The consent screen at `/a/oauth_authorize`: page, error page, redirects and switches."""

import re

import httpx
import pytest

from sandbox.state import SandboxState
from tests.helpers.sandbox_flows import (
    APP_ID,
    AUTHORIZE,
    REDIRECT_URI,
    SANDBOX_URL,
    authorize_params,
    consent,
    hidden_fields,
    pkce_pair,
    redirect_query,
)


async def test_page_names_app_scope_users_and_choices(api: httpx.AsyncClient) -> None:
    response = await api.get(AUTHORIZE, params=authorize_params())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert re.search(r"<title>[^<]*tsprov[^<]*</title>", page)
    assert "auth_keys:create:once" in page
    assert '<select id="login" name="login">' in page
    for login in ("alice@example.com", "bob@example.com", "carol@example.com"):
        assert f'<option value="{login}">' in page
    assert 'name="decision" value="approve"' in page
    assert 'name="decision" value="deny"' in page


async def test_page_loads_nothing_from_elsewhere(api: httpx.AsyncClient) -> None:
    response = await api.get(AUTHORIZE, params=authorize_params())
    assert not re.search(r"<(script|link|img|iframe)\b", response.text)
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize(
    "overrides",
    [
        {"client_id": "kUnknownCNTRL"},
        {"client_id": None},
        {"redirect_uri": "http://127.0.0.1:8000/callback/other"},
        {"redirect_uri": "https://attacker.example/callback"},
        {"redirect_uri": None},
    ],
)
async def test_bad_client_or_redirect_gets_error_page_never_redirect(
    api: httpx.AsyncClient, overrides: dict[str, str | None]
) -> None:
    response = await api.get(AUTHORIZE, params=authorize_params(**overrides))
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert "<title>" in response.text


async def test_approve_redirects_with_code_and_state(api: httpx.AsyncClient) -> None:
    query = await consent(api)
    assert set(query) == {"code", "state"}
    assert query["state"] == "state-123"


async def test_approve_answers_302_to_the_registered_uri(api: httpx.AsyncClient) -> None:
    page = await api.get(AUTHORIZE, params=authorize_params())
    form = {**hidden_fields(page.text), "login": "bob@example.com", "decision": "approve"}
    response = await api.post(AUTHORIZE, data=form)
    assert response.status_code == 302
    assert response.headers["location"].startswith(REDIRECT_URI + "?")


async def test_deny_redirects_access_denied(api: httpx.AsyncClient) -> None:
    query = await consent(api, decision="deny")
    assert query["error"] == "access_denied"
    assert query["state"] == "state-123"
    assert "code" not in query


async def test_state_is_echoed_only_when_sent(api: httpx.AsyncClient) -> None:
    query = await consent(api, state=None)
    assert "state" not in query
    assert "code" in query


async def test_tampered_form_is_refused_without_redirect(api: httpx.AsyncClient) -> None:
    page = await api.get(AUTHORIZE, params=authorize_params())
    form = {**hidden_fields(page.text), "login": "bob@example.com", "decision": "approve"}
    form["scope"] = "auth_keys:create"
    response = await api.post(AUTHORIZE, data=form)
    assert response.status_code == 400
    assert "location" not in response.headers


async def test_unknown_login_or_decision_is_refused(api: httpx.AsyncClient) -> None:
    page = await api.get(AUTHORIZE, params=authorize_params())
    form = {**hidden_fields(page.text), "login": "mallory@example.com", "decision": "approve"}
    assert (await api.post(AUTHORIZE, data=form)).status_code == 400
    form = {**hidden_fields(page.text), "login": "bob@example.com", "decision": "maybe"}
    assert (await api.post(AUTHORIZE, data=form)).status_code == 400


async def test_unsupported_response_type_redirects_error(api: httpx.AsyncClient) -> None:
    response = await api.get(AUTHORIZE, params=authorize_params(response_type="token"))
    query = redirect_query(response)
    assert query["error"] == "unsupported_response_type"
    assert query["state"] == "state-123"


async def test_missing_response_type_is_invalid_request(api: httpx.AsyncClient) -> None:
    response = await api.get(AUTHORIZE, params=authorize_params(response_type=None))
    assert redirect_query(response)["error"] == "invalid_request"


async def test_scope_beyond_the_app_is_invalid_scope(api: httpx.AsyncClient) -> None:
    response = await api.get(AUTHORIZE, params=authorize_params(scope="devices:core:read"))
    assert redirect_query(response)["error"] == "invalid_scope"


async def test_pkce_optional_by_default(api: httpx.AsyncClient) -> None:
    response = await api.get(AUTHORIZE, params=authorize_params())
    assert response.status_code == 200


async def test_required_pkce_without_challenge_is_invalid_request(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    state.switches.require_pkce = True
    response = await api.get(AUTHORIZE, params=authorize_params())
    assert redirect_query(response)["error"] == "invalid_request"
    _, challenge = pkce_pair()
    with_pkce = authorize_params(code_challenge=challenge, code_challenge_method="S256")
    assert (await api.get(AUTHORIZE, params=with_pkce)).status_code == 200


@pytest.mark.parametrize(
    "pkce",
    [
        {"code_challenge_method": "plain"},
        {"code_challenge_method": None},
        {"code_challenge": "too-short"},
    ],
)
async def test_malformed_pkce_is_invalid_request(
    api: httpx.AsyncClient, pkce: dict[str, str | None]
) -> None:
    _, challenge = pkce_pair()
    params = {"code_challenge": challenge, "code_challenge_method": "S256", **pkce}
    response = await api.get(AUTHORIZE, params=authorize_params(**params))
    assert redirect_query(response)["error"] == "invalid_request"


async def test_iss_absent_by_default(api: httpx.AsyncClient) -> None:
    assert "iss" not in await consent(api)
    assert "iss" not in await consent(api, decision="deny")


async def test_iss_is_the_sandbox_base_url_when_switched_on(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    state.switches.send_iss = True
    assert (await consent(api))["iss"] == SANDBOX_URL
    assert (await consent(api, decision="deny"))["iss"] == SANDBOX_URL
    response = await api.get(AUTHORIZE, params=authorize_params(response_type="token"))
    assert redirect_query(response)["iss"] == SANDBOX_URL


async def test_auto_approve_redirects_at_once_as_that_user(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    state.switches.auto_approve = "carol@example.com"
    response = await api.get(AUTHORIZE, params=authorize_params())
    query = redirect_query(response)
    assert query["state"] == "state-123"
    with state.lock:
        (code,) = state.codes.values()
    assert state.users[code.user_id].login_name == "carol@example.com"


async def test_forced_access_denied_redirects_error(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    state.switches.forced_oauth_error = "access_denied"
    response = await api.get(AUTHORIZE, params=authorize_params())
    query = redirect_query(response)
    assert query["error"] == "access_denied"
    assert query["state"] == "state-123"


async def test_redirect_keeps_a_registered_query(
    api: httpx.AsyncClient, state: SandboxState
) -> None:
    uri = "https://tsprov.example/callback?tenant=a"
    state.apps[APP_ID].redirect_uris.append(uri)
    response = await api.get(AUTHORIZE, params=authorize_params(redirect_uri=uri))
    form = {**hidden_fields(response.text), "login": "bob@example.com", "decision": "approve"}
    location = (await api.post(AUTHORIZE, data=form)).headers["location"]
    assert location.startswith(uri + "&code=")


async def test_awkward_state_survives_the_round_trip(api: httpx.AsyncClient) -> None:
    awkward = 'a&b="c" <d> é'
    assert (await consent(api, state=awkward))["state"] == awkward
