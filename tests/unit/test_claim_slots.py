"""A burst of claims queues for a slot, holding nothing, instead of in the connection pool."""

from __future__ import annotations

import asyncio

import pytest

from service.provisioning.claim_slots import ClaimSlots
from service.web.errors import ServiceUnavailable


async def test_a_claim_beyond_the_slots_waits_for_one_to_free_then_runs() -> None:
    slots = ClaimSlots(2, patience_seconds=30)
    inside: list[str] = []
    release = asyncio.Event()

    async def claim(name: str) -> None:
        async with slots.held():
            inside.append(name)
            await release.wait()

    tasks = [asyncio.create_task(claim(name)) for name in ("a", "b", "c")]
    for _ in range(5):
        await asyncio.sleep(0)
    assert inside == ["a", "b"]  # the third waits, in arrival order
    release.set()
    await asyncio.gather(*tasks)
    assert inside == ["a", "b", "c"]


async def test_no_slot_within_the_patience_is_a_503_asking_for_a_retry() -> None:
    slots = ClaimSlots(1, patience_seconds=0.05)
    async with slots.held():
        with pytest.raises(ServiceUnavailable) as refused:
            async with slots.held():
                pass
    assert refused.value.status == 503
    assert refused.value.headers == {"Retry-After": "1"}
    async with slots.held():  # the refused wait left no slot taken
        pass
