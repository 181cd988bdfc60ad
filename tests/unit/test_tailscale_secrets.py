"""The Tailscale client keeps secrets out of errors and logs; every error has a stable code."""

from __future__ import annotations

import logging
import traceback

import httpx
import pytest
from pydantic import SecretStr

from service.tailscale.client import (
    CircuitOpen,
    InvalidGrant,
    OAuthError,
    OutcomeUnknown,
    TailscaleError,
    UpstreamRefused,
    UpstreamUnavailable,
)
from tests.unit.tailscale_support import (
    AUTH_KEY,
    DEVICES_PATH,
    KEYS_PATH,
    REFRESH_TOKEN,
    SENTINELS,
    TOKEN_PATH,
    USER_TOKEN,
    Handler,
    MakeClient,
    Step,
    exchange,
    mint,
)

# --- secrecy and the error table ---------------------------------------------------------


def assert_secret_free(exc: BaseException) -> None:
    text = "".join([str(exc), repr(exc), *traceback.format_exception(exc)])
    for sentinel in SENTINELS:
        assert sentinel not in text


def echo_request(status: int) -> Handler:
    """An upstream that reflects the request, its credentials and a stray auth key back."""

    async def answer(request: httpx.Request) -> httpx.Response:
        sent = " ".join([request.content.decode(), request.headers.get("authorization", "")])
        text = f"{sent} {AUTH_KEY}\n injected log line"
        body = {"error": "invalid_grant", "error_description": text, "message": text}
        return httpx.Response(status, json=body)

    return answer


@pytest.mark.parametrize(
    "step", [echo_request(400), echo_request(403), httpx.ReadError, httpx.ConnectError, 500, 302]
)
async def test_no_secret_reaches_an_exception_or_a_log_line(
    make: MakeClient, caplog: pytest.LogCaptureFixture, step: Step
) -> None:
    made = make()
    for path in (TOKEN_PATH, KEYS_PATH, DEVICES_PATH):
        made.upstream.answer(path, step)
    calls = [
        lambda: exchange(made.client),
        lambda: made.client.refresh(SecretStr(REFRESH_TOKEN)),
        lambda: mint(made.client),
        made.client.list_devices,
    ]
    with caplog.at_level(logging.DEBUG):
        for start in calls:
            with pytest.raises(TailscaleError) as failed:
                await start()
            assert_secret_free(failed.value)
    assert "injected log line" not in caplog.text
    for sentinel in SENTINELS:
        assert sentinel not in caplog.text


async def test_an_observer_call_masks_the_observer_token_it_sent(make: MakeClient) -> None:
    made = make()
    made.upstream.answer(DEVICES_PATH, echo_request(403))
    with pytest.raises(UpstreamRefused) as failed:
        await made.client.list_devices()
    assert "Bearer [redacted]" in failed.value.message
    assert_secret_free(failed.value)


async def test_upstream_text_is_one_short_line_with_secrets_masked(make: MakeClient) -> None:
    made = make()
    made.upstream.answer(TOKEN_PATH, echo_request(400))
    with pytest.raises(InvalidGrant) as failed:
        await exchange(made.client)
    description = failed.value.description or ""
    assert "[redacted]" in description
    assert "\n" not in description
    assert len(description) <= 200


async def test_a_token_answer_in_malformed_json_stays_out_of_the_error(make: MakeClient) -> None:
    made = make()

    async def truncated(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=f'{{"access_token": "{USER_TOKEN}"'.encode())

    made.upstream.answer(TOKEN_PATH, truncated)
    with pytest.raises(UpstreamUnavailable) as failed:
        await exchange(made.client)
    assert failed.value.__context__ is None
    assert_secret_free(failed.value)


def test_every_error_has_a_stable_code() -> None:
    errors: list[type[TailscaleError]] = [
        UpstreamUnavailable, CircuitOpen, OutcomeUnknown, OAuthError, InvalidGrant, UpstreamRefused
    ]  # fmt: skip
    assert {error.__name__: error.code for error in errors} == {
        "UpstreamUnavailable": "upstream_unavailable",
        "CircuitOpen": "upstream_unavailable",
        "OutcomeUnknown": "upstream_outcome_unknown",
        "OAuthError": "upstream_oauth_error",
        "InvalidGrant": "consent_required",
        "UpstreamRefused": "upstream_refused",
    }
    assert issubclass(CircuitOpen, UpstreamUnavailable)
    assert issubclass(OutcomeUnknown, UpstreamUnavailable)
    assert issubclass(InvalidGrant, OAuthError)
