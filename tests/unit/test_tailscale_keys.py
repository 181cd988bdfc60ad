"""The Tailscale client minting auth keys: wire format, refusals, never resending a mint."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from service.tailscale.client import OutcomeUnknown, UpstreamRefused
from tests.unit.tailscale_support import AUTH_KEY, KEYS_PATH, USER_TOKEN, MakeClient, Step, mint

# --- wire format -------------------------------------------------------------------------


async def test_mint_sends_the_users_token_and_the_documented_body(make: MakeClient) -> None:
    made = make()
    answer = {"id": "k123", "key": AUTH_KEY, "expires": "2026-06-01T13:00:00Z"}
    made.upstream.answer(KEYS_PATH, 200, body=answer)
    key = await mint(made.client)
    (request,) = made.upstream.requests
    assert request.method == "POST"
    assert request.headers["authorization"] == f"Bearer {USER_TOKEN}"
    assert json.loads(request.content) == {
        "capabilities": {
            "devices": {
                "create": {
                    "reusable": False,
                    "ephemeral": True,
                    "preauthorized": True,
                    "tags": ["tag:devbox"],
                }
            }
        },
        "expirySeconds": 3600,
        "description": "tsprov alice",
    }
    assert (key.key_id, key.key.get_secret_value()) == ("k123", AUTH_KEY)
    assert key.expires == datetime(2026, 6, 1, 13, 0, tzinfo=UTC)


async def test_mint_leaves_out_unset_expiry_and_description(make: MakeClient) -> None:
    made = make()
    made.upstream.answer(KEYS_PATH, 200, body={"id": "k1", "key": AUTH_KEY})
    await made.client.create_auth_key(
        SecretStr(USER_TOKEN), reusable=True, ephemeral=False, preauthorized=False, tags=[],
        expiry_seconds=None, description=None,
    )  # fmt: skip
    body = json.loads(made.upstream.requests[0].content)
    assert set(body) == {"capabilities"}


# --- retries and Retry-After -------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409])
async def test_api_refusals_are_not_retried(make: MakeClient, status: int) -> None:
    made = make()
    made.upstream.answer(KEYS_PATH, status, body={"message": "tag:devbox is not permitted"})
    with pytest.raises(UpstreamRefused) as refused:
        await mint(made.client)
    assert (refused.value.status, refused.value.message) == (status, "tag:devbox is not permitted")
    assert refused.value.code == "upstream_refused"
    assert len(made.upstream.requests) == 1
    assert made.sleeps.calls == []


@pytest.mark.parametrize("step", [500, 503, 504, httpx.ReadTimeout, httpx.ReadError])
async def test_mint_is_never_resent_after_it_may_have_worked(make: MakeClient, step: Step) -> None:
    made = make()
    made.upstream.answer(KEYS_PATH, step, 200, body={"id": "k1", "key": AUTH_KEY})
    with pytest.raises(OutcomeUnknown) as unknown:
        await mint(made.client)
    assert unknown.value.code == "upstream_outcome_unknown"
    assert len(made.upstream.requests) == 1


@pytest.mark.parametrize("step", [429, httpx.ConnectError, httpx.ConnectTimeout])
async def test_mint_is_resent_when_nothing_was_made(make: MakeClient, step: Step) -> None:
    made = make()
    made.upstream.answer(KEYS_PATH, step, 200, body={"id": "k1", "key": AUTH_KEY})
    assert (await mint(made.client)).key_id == "k1"
    assert len(made.upstream.requests) == 2


@pytest.mark.parametrize("body", [b"{not json", b'{"id": "k1"}', b'["k1"]'])
async def test_an_unreadable_mint_answer_is_an_unknown_outcome(make: MakeClient, body: Any) -> None:
    made = make()

    async def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body)

    made.upstream.answer(KEYS_PATH, answer)
    with pytest.raises(OutcomeUnknown):
        await mint(made.client)
