"""The Tailscale client's retries: Retry-After, refusals, and when a token call is resent."""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime

import httpx
import pytest
from pydantic import SecretStr

from service.tailscale.client import InvalidGrant, UpstreamRefused, UpstreamUnavailable
from tests.unit.tailscale_support import (
    DEVICES_PATH,
    NOW,
    REFRESH_TOKEN,
    TOKEN_PATH,
    USER_TOKEN,
    MakeClient,
    Step,
    device_json,
    exchange,
    form,
    token_body,
)

# --- retries and Retry-After -------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry_after", "low", "high"),
    [
        ("7", 7.0, 7.0),
        (format_datetime(NOW + timedelta(seconds=12), usegmt=True), 12.0, 12.0),
        ("in a little while", 0.0, 0.2),  # garbage: plain jittered backoff
    ],
)
async def test_429_waits_as_retry_after_says_within_the_deadline(
    make: MakeClient, retry_after: str, low: float, high: float
) -> None:
    made = make()

    async def limited(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": retry_after}, json={"message": "slow"})

    made.upstream.answer(TOKEN_PATH, limited, 200, body=token_body())
    grant = await exchange(made.client)
    assert grant.access_token.get_secret_value() == USER_TOKEN
    assert len(made.upstream.requests) == 2
    (waited,) = made.sleeps.calls
    assert low <= waited <= high


async def test_retry_after_beyond_the_deadline_fails_at_once_with_the_hint(
    make: MakeClient,
) -> None:
    made = make(deadline=5.0)

    async def limited(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "30"})

    made.upstream.answer(DEVICES_PATH, limited)
    with pytest.raises(UpstreamUnavailable) as failed:
        await made.client.list_devices()
    assert failed.value.retry_after == 30.0
    assert made.sleeps.calls == []


# A 401 is different: the token is replaced and the call sent once more (observer tests).
@pytest.mark.parametrize("status", [400, 403, 404])
async def test_observer_refusals_are_not_retried(make: MakeClient, status: int) -> None:
    made = make()
    made.upstream.answer(DEVICES_PATH, status, body={"message": "no"})
    with pytest.raises(UpstreamRefused):
        await made.client.list_devices()
    assert len(made.upstream.sent(DEVICES_PATH)) == 1


async def test_server_errors_are_retried_for_gets(make: MakeClient) -> None:
    made = make()
    made.upstream.answer(DEVICES_PATH, 500, 502, 200, body={"devices": [device_json()]})
    assert len(await made.client.list_devices()) == 1
    assert len(made.upstream.sent(DEVICES_PATH)) == 3
    assert len(made.sleeps.calls) == 2
    assert 0.0 <= made.sleeps.calls[0] <= 0.2
    assert 0.0 <= made.sleeps.calls[1] <= 0.4


@pytest.mark.parametrize(
    "step", [httpx.ReadError, httpx.ReadTimeout, httpx.RemoteProtocolError, 500]
)
async def test_exchange_is_not_resent_once_the_code_may_have_arrived(
    make: MakeClient, step: Step
) -> None:
    made = make()
    made.upstream.answer(TOKEN_PATH, step, 200, body=token_body())
    with pytest.raises(UpstreamUnavailable) as failed:
        await exchange(made.client)
    assert type(failed.value) is UpstreamUnavailable
    assert len(made.upstream.requests) == 1


@pytest.mark.parametrize("step", [httpx.ConnectError, httpx.ConnectTimeout, 503])
async def test_exchange_is_resent_when_the_code_never_arrived(make: MakeClient, step: Step) -> None:
    made = make()
    made.upstream.answer(TOKEN_PATH, step, 200, body=token_body())
    await exchange(made.client)
    assert len(made.upstream.requests) == 2


async def test_refresh_is_resent_once_after_a_reset(make: MakeClient) -> None:
    made = make()
    made.upstream.answer(TOKEN_PATH, httpx.ReadError, 200, body=token_body(refresh_token="r2"))
    grant = await made.client.refresh(SecretStr(REFRESH_TOKEN))
    assert grant.refresh_token is not None
    assert len(made.upstream.requests) == 2
    assert form(made.upstream.requests[0]) == form(made.upstream.requests[1])


async def test_refresh_gives_up_after_a_second_reset(make: MakeClient) -> None:
    made = make()
    made.upstream.answer(TOKEN_PATH, httpx.ReadError, httpx.ReadError, 200, body=token_body())
    with pytest.raises(UpstreamUnavailable):
        await made.client.refresh(SecretStr(REFRESH_TOKEN))
    assert len(made.upstream.requests) == 2


async def test_refresh_reset_then_spent_token_means_consent_required(make: MakeClient) -> None:
    made = make()
    made.upstream.answer(TOKEN_PATH, httpx.ReadError, 400, body={"error": "invalid_grant"})
    with pytest.raises(InvalidGrant) as spent:
        await made.client.refresh(SecretStr(REFRESH_TOKEN))
    assert spent.value.code == "consent_required"
    assert len(made.upstream.requests) == 2
