"""Token-endpoint refusals in Tailscale's ``{"message"}`` shape, classified like RFC 6749's."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from service.tailscale.client import InvalidGrant, OAuthError, UpstreamRefused
from tests.unit.tailscale_support import (
    APP_SECRET,
    CODE,
    DEVICES_PATH,
    REFRESH_TOKEN,
    TOKEN_PATH,
    MakeClient,
    exchange,
)


@pytest.mark.parametrize(
    "message",
    ["authorization code has already been used", "unknown authorization code", "forbidden", ""],
)
async def test_a_403_message_on_a_code_exchange_means_consent_required(
    make: MakeClient, message: str
) -> None:
    made = make()
    made.upstream.answer(TOKEN_PATH, 403, body={"message": message})
    with pytest.raises(InvalidGrant) as refused:
        await exchange(made.client)
    assert refused.value.code == "consent_required"
    assert (refused.value.error, refused.value.description) == ("invalid_grant", message or None)


async def test_a_403_message_on_a_refresh_means_consent_required(make: MakeClient) -> None:
    made = make()
    made.upstream.answer(TOKEN_PATH, 403, body={"message": "the grant has been revoked"})
    with pytest.raises(InvalidGrant) as refused:
        await made.client.refresh(SecretStr(REFRESH_TOKEN))
    assert refused.value.code == "consent_required"


@pytest.mark.parametrize(
    ("status", "message", "error"),
    [
        (401, "API token invalid", "invalid_client"),
        (400, "parameter code is required", "invalid_request"),
        (403, "OAuth client cannot grant scopes [devices:core]", "invalid_scope"),
    ],
)
async def test_other_message_refusals_are_oauth_errors_not_consent(
    make: MakeClient, status: int, message: str, error: str
) -> None:
    made = make()
    made.upstream.answer(TOKEN_PATH, status, body={"message": message})
    with pytest.raises(OAuthError) as refused:
        await exchange(made.client)
    assert type(refused.value) is OAuthError
    assert (refused.value.code, refused.value.error) == ("upstream_oauth_error", error)


async def test_a_message_refusal_with_another_status_stays_a_refusal(make: MakeClient) -> None:
    made = make()
    made.upstream.answer(TOKEN_PATH, 409, body={"message": "conflict"})
    with pytest.raises(UpstreamRefused) as refused:
        await made.client.refresh(SecretStr(REFRESH_TOKEN))
    assert (refused.value.status, refused.value.message) == (409, "conflict")


async def test_a_message_echoing_what_was_sent_is_masked(make: MakeClient) -> None:
    made = make()
    made.upstream.answer(TOKEN_PATH, 403, body={"message": f"code {CODE} ({APP_SECRET}) spent"})
    with pytest.raises(InvalidGrant) as refused:
        await exchange(made.client)
    assert refused.value.description == "code [redacted] ([redacted]) spent"


async def test_the_observer_credentials_refused_in_message_shape_stay_a_refusal(
    make: MakeClient,
) -> None:
    made = make()
    made.upstream.answer(TOKEN_PATH, 401, body={"message": "API token invalid"})
    with pytest.raises(UpstreamRefused) as refused:
        await made.client.list_devices()
    assert (refused.value.status, refused.value.message) == (401, "API token invalid")
    assert made.upstream.sent(DEVICES_PATH) == []
