"""Steps for tests of what follows a join: a device provisioned end to end, and waiting
(without tight margins) for the background jobs to show their outcome."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from tests.conftest import bearer
from tests.helpers.browser import Browser
from tests.helpers.steps import claim_and_join, create_request, new_user

EVERYTHING = {"start": "2000-01-01T00:00:00Z", "end": "2100-01-01T00:00:00Z"}
Check = Callable[[dict[str, Any]], bool]


async def until(api: httpx.AsyncClient, key: str, request_id: str, check: Check) -> dict[str, Any]:
    """The request once ``check`` holds; the background jobs run every few tenths of a second."""
    for _ in range(150):
        answer = await api.get(f"/v1/provisioning-requests/{request_id}", headers=bearer(key))
        body: dict[str, Any] = answer.json()
        if check(body):
            return body
        await asyncio.sleep(0.2)
    raise AssertionError(f"never reached: {body}")


async def provision(
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    key: str,
    **body: Any,
) -> tuple[str, str, str]:
    """Consent, claim and join; (user, request id, node id)."""
    user, hostname = new_user(), f"ap-{uuid.uuid4().hex[:8]}"
    request = await create_request(api, key, user, hostname=hostname, **body)
    await browser.consent(request["consent_url"], login="alice@example.com")
    device = await claim_and_join(api, sandbox, key, request["id"], hostname)
    return user, request["id"], device["nodeId"]


async def events(
    api: httpx.AsyncClient, key: str, user: str, name: str, prop: str | None = None
) -> list[dict[str, Any]]:
    """The user's events named ``name`` (and about ``prop``, when given)."""
    params = {**EVERYTHING, "user_id": user, "event": name}
    trail = await api.get("/v1/audit", params=params, headers=bearer(key))
    logs: list[dict[str, Any]] = trail.json()["logs"]
    return [log for log in logs if prop is None or log["target"]["property"] == prop]


async def until_events(
    api: httpx.AsyncClient, key: str, user: str, name: str, prop: str | None = None
) -> list[dict[str, Any]]:
    for _ in range(150):
        found = await events(api, key, user, name, prop)
        if found:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"no {name} event for {user}")
