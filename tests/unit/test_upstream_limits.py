"""Bounded reads, the overall deadline and per-attempt timeouts of the upstream caller."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from service.tailscale.transport import IDEMPOTENT, NON_IDEMPOTENT, read_bounded
from service.tailscale.wire import BodyTooLarge, OutcomeUnknown, UpstreamUnavailable
from tests.unit.upstream_support import MakeCaller, Script, call

# --- bounded reads -----------------------------------------------------------------------


async def _stream(size: int, *, declare: bool) -> httpx.Response:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(size // 1024):
            yield b"x" * 1024

    headers = {"content-length": str(size)} if declare else {}
    return httpx.Response(200, content=chunks(), headers=headers)


async def test_read_bounded_accepts_exactly_the_limit() -> None:
    assert len(await read_bounded(await _stream(4096, declare=False), 4096)) == 4096


@pytest.mark.parametrize("declare", [True, False])
async def test_read_bounded_stops_past_the_limit(declare: bool) -> None:
    with pytest.raises(BodyTooLarge):
        await read_bounded(await _stream(5 * 1024 * 1024, declare=declare), 1 << 20)


async def test_deadline_bounds_a_dripping_body(caller: MakeCaller) -> None:
    async def drip(request: httpx.Request) -> httpx.Response:
        async def body() -> AsyncIterator[bytes]:
            for _ in range(50):
                yield b" "
                await asyncio.sleep(0.05)

        return httpx.Response(200, content=body())

    upstream, _ = caller(drip, deadline=0.3)
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable) as idempotent:
        await call(upstream, IDEMPOTENT)
    with pytest.raises(OutcomeUnknown):
        await call(upstream, NON_IDEMPOTENT, "POST")
    assert time.monotonic() - started < 2.0  # the two drips would take 5 s
    assert type(idempotent.value) is UpstreamUnavailable


async def test_every_attempt_carries_the_connect_and_read_timeouts(caller: MakeCaller) -> None:
    script = Script(httpx.ConnectTimeout, 200)
    upstream, _ = caller(script, connect_timeout=1.5, read_timeout=4.0)
    await call(upstream, IDEMPOTENT)
    for request in script.requests:
        timeout = request.extensions["timeout"]
        assert (timeout["connect"], timeout["read"]) == (1.5, 4.0)
