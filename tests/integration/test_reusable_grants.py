"""Reusable grants: one consent, many devices, refreshes serialised, consent asked again."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from tests.conftest import bearer
from tests.helpers.browser import Browser
from tests.helpers.steps import Sessions, claim_and_join, create_request, expire_access_tokens


async def reusable_mode(sandbox: httpx.AsyncClient, **switches: Any) -> None:
    answer = await sandbox.patch("/sandbox/switches", json={"grant_mode": "reusable", **switches})
    assert answer.status_code == 200, answer.text


async def consented_user(
    api: httpx.AsyncClient, browser: Browser, key: str, login: str = "alice@example.com"
) -> tuple[str, dict[str, Any]]:
    """A user holding a reusable grant, and the request whose consent made it."""
    user = f"reuse-{uuid.uuid4().hex[:10]}"
    request = await create_request(api, key, user, hostname="r1")
    callback = await browser.consent(request["consent_url"], login=login)
    assert callback.status_code == 303, callback.text
    return user, request


async def ask_ready(api: httpx.AsyncClient, key: str, user: str, **body: Any) -> dict[str, Any]:
    request = await create_request(api, key, user, **body)
    assert request["status"] == "ready"
    assert request["consent_url"] is None
    return request


async def token_calls(sandbox: httpx.AsyncClient, grant_type: str) -> int:
    log = await sandbox.get("/sandbox/requests", params={"grant_type": grant_type})
    return len(log.json()["requests"])


async def test_one_consent_serves_many_devices_each_owned_by_the_user(
    reusable_api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    caller_key: str,
) -> None:
    await reusable_mode(sandbox)
    user, first = await consented_user(reusable_api, browser, caller_key)
    second = await ask_ready(reusable_api, caller_key, user, hostname="r2", ephemeral=True)
    assert second["grant"]["mode"] == "reusable"
    for request, hostname in ((first, "r1"), (second, "r2")):
        joined = await claim_and_join(reusable_api, sandbox, caller_key, request["id"], hostname)
        assert joined["user"] == "alice@example.com"
    assert joined["isEphemeral"] is True
    assert await token_calls(sandbox, "authorization_code") == 1


async def test_fifty_concurrent_calls_on_an_expired_grant_refresh_exactly_once(
    reusable_api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    caller_key: str,
    it_sessions: Sessions,
) -> None:
    await reusable_mode(sandbox)
    user, _ = await consented_user(reusable_api, browser, caller_key)
    await expire_access_tokens(it_sessions, user)

    async def provision() -> int:
        request = await ask_ready(reusable_api, caller_key, user)
        claim = await reusable_api.post(
            f"/v1/provisioning-requests/{request['id']}/claim", headers=bearer(caller_key)
        )
        return claim.status_code

    statuses = await asyncio.gather(*(provision() for _ in range(50)))
    assert statuses == [200] * 50
    assert await token_calls(sandbox, "refresh_token") == 1


async def test_twenty_parallel_claims_of_one_request_yield_one_key(
    reusable_api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    caller_key: str,
) -> None:
    await reusable_mode(sandbox)
    user, _ = await consented_user(reusable_api, browser, caller_key)
    request = await ask_ready(reusable_api, caller_key, user)
    claims = await asyncio.gather(
        *(
            reusable_api.post(
                f"/v1/provisioning-requests/{request['id']}/claim", headers=bearer(caller_key)
            )
            for _ in range(20)
        )
    )
    keys = [claim.json()["auth_key"] for claim in claims if claim.status_code == 200]
    assert len(keys) == 1
    assert {claim.status_code for claim in claims} <= {200, 409}
    minted = await sandbox.get("/sandbox/requests", params={"route": "keys"})
    assert len([r for r in minted.json()["requests"] if r["method"] == "POST"]) == 1


async def test_a_refused_refresh_asks_for_consent_again(
    reusable_api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    caller_key: str,
    it_sessions: Sessions,
) -> None:
    await reusable_mode(sandbox)
    user, _ = await consented_user(reusable_api, browser, caller_key)
    request = await ask_ready(reusable_api, caller_key, user)
    await expire_access_tokens(it_sessions, user)
    await sandbox.patch("/sandbox/switches", json={"forced_oauth_error": "invalid_grant"})
    claim = await reusable_api.post(
        f"/v1/provisioning-requests/{request['id']}/claim", headers=bearer(caller_key)
    )
    assert claim.status_code == 409
    assert claim.json()["code"] == "consent_required"
    assert claim.json()["consent_url"].startswith(f"{reusable_api.base_url}/authorize?request=")
    after = await reusable_api.get(
        f"/v1/provisioning-requests/{request['id']}", headers=bearer(caller_key)
    )
    assert after.json()["status"] == "awaiting_consent"
    grants = (await reusable_api.get(f"/v1/users/{user}", headers=bearer(caller_key))).json()
    assert [grant["status"] for grant in grants["grants"]] == ["needs_consent"]
    assert await token_calls(sandbox, "refresh_token") == 1


async def test_a_grant_says_when_it_last_gave_a_key_to_the_minute(
    reusable_api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    caller_key: str,
) -> None:
    await reusable_mode(sandbox)
    user, first = await consented_user(reusable_api, browser, caller_key)

    async def last_used() -> str | None:
        answer = await reusable_api.get(f"/v1/users/{user}", headers=bearer(caller_key))
        assert answer.status_code == 200, answer.text
        stamp: str | None = answer.json()["grants"][0]["last_used_at"]
        return stamp

    await claim_and_join(reusable_api, sandbox, caller_key, first["id"], "r1")
    stamped = await last_used()
    assert stamped is not None
    second = await ask_ready(reusable_api, caller_key, user, hostname="r2")
    await claim_and_join(reusable_api, sandbox, caller_key, second["id"], "r2")
    # Within a minute of the last stamp the grant's row is not written again.
    assert await last_used() == stamped
