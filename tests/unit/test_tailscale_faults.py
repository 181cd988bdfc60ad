"""The Tailscale client against a faulty token endpoint: slow, huge, malformed answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from service.tailscale.client import OutcomeUnknown, UpstreamUnavailable
from tests.unit.tailscale_support import (
    KEYS_PATH,
    TOKEN_PATH,
    MakeClient,
    exchange,
    mint,
    token_body,
)

# --- faults at the token endpoint --------------------------------------------------------


async def test_a_dripping_body_cannot_outlast_the_deadline(make: MakeClient) -> None:
    made = make(deadline=0.3)

    async def drip(request: httpx.Request) -> httpx.Response:
        async def body() -> AsyncIterator[bytes]:
            yield b'{"access_token": "'
            for _ in range(100):
                await asyncio.sleep(0.05)
                yield b"a"

        return httpx.Response(200, content=body())

    made.upstream.answer(TOKEN_PATH, drip)
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable, match="deadline"):
        await exchange(made.client)
    assert time.monotonic() - started < 2.0  # the whole drip would take 5 s


async def test_thirty_seconds_of_latency_cannot_outlast_the_deadline(make: MakeClient) -> None:
    made = make(deadline=0.3)

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        return httpx.Response(200, json=token_body())

    made.upstream.answer(TOKEN_PATH, slow)
    made.upstream.answer(KEYS_PATH, slow)
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable, match="deadline"):
        await exchange(made.client)
    with pytest.raises(OutcomeUnknown):
        await mint(made.client)
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("declare_length", [True, False])
async def test_a_5mb_body_is_an_upstream_error(make: MakeClient, declare_length: bool) -> None:
    made = make()

    async def huge(request: httpx.Request) -> httpx.Response:
        async def body() -> AsyncIterator[bytes]:
            for _ in range(80):
                yield b"x" * 65536

        headers = {"content-length": str(80 * 65536)} if declare_length else {}
        return httpx.Response(200, content=body(), headers=headers)

    made.upstream.answer(TOKEN_PATH, huge)
    with pytest.raises(UpstreamUnavailable, match="over 1048576 bytes"):
        await exchange(made.client)
    assert len(made.upstream.requests) == 1


@pytest.mark.parametrize(
    "content",
    [b'{"access_token": ', b"<html>502</html>", b"[1, 2]", b"[" * 100_000, b"\xff\xfe"],
)
async def test_malformed_json_is_an_upstream_error(make: MakeClient, content: bytes) -> None:
    made = make()

    async def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=content)

    made.upstream.answer(TOKEN_PATH, answer)
    with pytest.raises(UpstreamUnavailable, match="not a JSON object"):
        await exchange(made.client)


@pytest.mark.parametrize(
    "body", [{"token_type": "Bearer"}, {"access_token": ""}, {"access_token": 42}]
)
async def test_a_token_answer_without_access_token_is_an_upstream_error(
    make: MakeClient, body: Any
) -> None:
    made = make()
    made.upstream.answer(TOKEN_PATH, 200, body=body)
    with pytest.raises(UpstreamUnavailable, match="access_token"):
        await exchange(made.client)


async def test_an_unexpected_redirect_is_an_upstream_error(make: MakeClient) -> None:
    made = make()
    made.upstream.answer(TOKEN_PATH, 302, body={})
    with pytest.raises(UpstreamUnavailable, match="302"):
        await exchange(made.client)
