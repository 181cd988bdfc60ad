"""The Tailscale client's OAuth calls: authorize URL, code exchange, refresh, OAuth errors."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr

from service.tailscale.client import InvalidGrant, OAuthError, UpstreamRefused
from tests.unit.tailscale_support import (
    API,
    APP_SECRET,
    CODE,
    REDIRECT_URI,
    REFRESH_TOKEN,
    TOKEN_PATH,
    USER_TOKEN,
    VERIFIER,
    MakeClient,
    exchange,
    form,
    token_body,
)

# --- wire format -------------------------------------------------------------------------


async def test_authorize_url_carries_exact_parameters_and_s256(make: MakeClient) -> None:
    client = make().client
    url = client.authorize_url(
        redirect_uri=REDIRECT_URI, scope="auth_keys:create:once", state="st&te", code_challenge="c"
    )
    parts = urlsplit(url)
    assert (
        f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://login.example/a/oauth_authorize"
    )
    assert parse_qs(parts.query, strict_parsing=True) == {
        "client_id": ["app-client-id"],
        "redirect_uri": [REDIRECT_URI],
        "response_type": ["code"],
        "scope": ["auth_keys:create:once"],
        "state": ["st&te"],
        "code_challenge": ["c"],
        "code_challenge_method": ["S256"],
    }


async def test_exchange_sends_exactly_the_form_with_client_auth_as_fields(make: MakeClient) -> None:
    made = make()
    made.upstream.answer(TOKEN_PATH, 200, body=token_body(scope="auth_keys:create:once"))
    grant = await exchange(made.client)
    (request,) = made.upstream.requests
    assert (request.method, str(request.url)) == ("POST", API + TOKEN_PATH)
    assert "authorization" not in request.headers
    assert form(request) == {
        "grant_type": ["authorization_code"],
        "code": [CODE],
        "client_id": ["app-client-id"],
        "client_secret": [APP_SECRET],
        "redirect_uri": [REDIRECT_URI],
        "code_verifier": [VERIFIER],
    }
    assert grant.access_token.get_secret_value() == USER_TOKEN
    assert (grant.token_type, grant.expires_in, grant.scope) == (
        "Bearer",
        3600,
        "auth_keys:create:once",
    )
    assert grant.refresh_token is None
    assert grant.login_name is None


async def test_refresh_sends_the_refresh_token_and_keeps_a_rotated_one(make: MakeClient) -> None:
    made = make()
    made.upstream.answer(
        TOKEN_PATH, 200, body=token_body(refresh_token="rotated", expires_in="900")
    )
    grant = await made.client.refresh(SecretStr(REFRESH_TOKEN))
    assert form(made.upstream.requests[0]) == {
        "grant_type": ["refresh_token"],
        "refresh_token": [REFRESH_TOKEN],
        "client_id": ["app-client-id"],
        "client_secret": [APP_SECRET],
    }
    assert grant.refresh_token is not None
    assert grant.refresh_token.get_secret_value() == "rotated"
    assert grant.expires_in == 900


@pytest.mark.parametrize(
    ("field", "extra", "login"),
    [
        ("login_name", {"login_name": "alice@example.com"}, "alice@example.com"),
        ("user.loginName", {"user": {"loginName": "bob@example.com"}}, "bob@example.com"),
        ("user.loginName", {"user": "bob@example.com"}, None),
        ("login_name", {}, None),
        ("login_name", {"login_name": 7}, None),
        (None, {"login_name": "alice@example.com"}, None),
    ],
)
async def test_identity_field_names_the_consenting_user(
    make: MakeClient, field: str | None, extra: dict[str, Any], login: str | None
) -> None:
    made = make(identity_field=field)
    made.upstream.answer(TOKEN_PATH, 200, body=token_body(**extra))
    assert (await exchange(made.client)).login_name == login


async def test_an_empty_refresh_token_means_a_single_use_grant(make: MakeClient) -> None:
    made = make()
    made.upstream.answer(TOKEN_PATH, 200, body={"access_token": USER_TOKEN, "refresh_token": ""})
    grant = await exchange(made.client)
    assert grant.refresh_token is None
    assert grant.token_type == "Bearer"
    assert grant.expires_in is None


# --- OAuth errors ------------------------------------------------------------------------


async def test_invalid_grant_means_consent_required(make: MakeClient) -> None:
    made = make()
    error = {"error": "invalid_grant", "error_description": "code expired"}
    made.upstream.answer(TOKEN_PATH, 400, body=error)
    with pytest.raises(InvalidGrant) as spent:
        await exchange(made.client)
    assert (spent.value.code, spent.value.error) == ("consent_required", "invalid_grant")
    assert spent.value.description == "code expired"
    assert len(made.upstream.requests) == 1


@pytest.mark.parametrize(
    ("status", "body", "error", "description"),
    [
        (400, {"error": "invalid_request", "error_description": "bad"}, "invalid_request", "bad"),
        (401, {"error": "invalid_client"}, "invalid_client", None),
        (
            400,
            {"error": "unsupported_grant_type", "error_description": 5},
            "unsupported_grant_type",
            None,
        ),
    ],
)
async def test_other_oauth_errors_keep_their_rfc6749_fields(
    make: MakeClient, status: int, body: Any, error: Any, description: str | None
) -> None:
    made = make()
    made.upstream.answer(TOKEN_PATH, status, body=body)
    with pytest.raises(OAuthError) as refused:
        await made.client.refresh(SecretStr(REFRESH_TOKEN))
    assert type(refused.value) is OAuthError
    assert refused.value.code == "upstream_oauth_error"
    assert (refused.value.error, refused.value.description) == (error, description)


async def test_a_token_refusal_with_neither_shape_is_a_plain_refusal(make: MakeClient) -> None:
    made = make()
    made.upstream.answer(TOKEN_PATH, 403, body={"detail": "app disabled"})
    with pytest.raises(UpstreamRefused) as refused:
        await exchange(made.client)
    assert (refused.value.status, refused.value.message) == (403, "no message")
