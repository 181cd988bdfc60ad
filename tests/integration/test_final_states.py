"""A request that has ended says why, and a long-poll on it answers at once."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.conftest import bearer
from tests.helpers.browser import Browser
from tests.helpers.steps import claim_and_join, create_request, fetch_request, new_user

# Far above a local read (milliseconds), far below the 10 s the poll asks to wait.
AT_ONCE_SECONDS = 1.0


async def _poll(api: httpx.AsyncClient, key: str, request_id: str) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    answer = await api.get(
        f"/v1/provisioning-requests/{request_id}",
        params={"wait_seconds": 10},
        headers=bearer(key),
    )
    assert answer.status_code == 200, answer.text
    return answer.json(), time.monotonic() - started


async def test_a_long_poll_on_a_joined_request_answers_at_once(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, browser: Browser, caller_key: str
) -> None:
    request = await create_request(api, caller_key, new_user(), hostname="devbox-final")
    await browser.consent(request["consent_url"], login="alice@example.com")
    await claim_and_join(api, sandbox, caller_key, request["id"], "devbox-final")
    for _ in range(3):  # the join watch links the device within a background tick or two
        body, _ = await _poll(api, caller_key, request["id"])
        if body["status"] == "joined":
            break
    assert body["status"] == "joined"
    again, seconds = await _poll(api, caller_key, request["id"])
    assert again["status"] == "joined"
    assert again["failure"] is None
    assert seconds < AT_ONCE_SECONDS


async def test_a_request_consented_by_the_wrong_login_says_so_without_naming_it(
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    caller_key: str,
    admin_key: str,
) -> None:
    user = new_user()
    expected = {"tailscale_login": "alice@example.com"}
    put = await api.put(f"/v1/users/{user}", headers=bearer(admin_key), json=expected)
    assert put.status_code == 200, put.text
    request = await create_request(api, caller_key, user, hostname="devbox-wrong")
    refused = await browser.consent(request["consent_url"], login="bob@example.com")
    assert refused.status_code == 403  # found at the callback: no key ever went out
    body, _ = await _poll(api, caller_key, request["id"])
    assert body["status"] == "failed"
    assert body["failure"]["code"] == "identity_mismatch"
    assert "sign in as themselves" in body["failure"]["message"]
    assert "bob" not in str(body["failure"])
    again, seconds = await _poll(api, caller_key, request["id"])
    assert again["failure"] == body["failure"]
    assert seconds < AT_ONCE_SECONDS


async def test_cancelled_and_offboarded_requests_say_which(
    api: httpx.AsyncClient, caller_key: str, admin_key: str
) -> None:
    user = new_user()
    cancelled = await create_request(api, caller_key, user)
    offboarded = await create_request(api, caller_key, user)
    gone = await api.delete(
        f"/v1/provisioning-requests/{cancelled['id']}", headers=bearer(caller_key)
    )
    assert gone.status_code == 204
    await api.delete(f"/v1/users/{user}/grants", headers=bearer(admin_key))
    first = await fetch_request(api, caller_key, cancelled["id"])
    second = await fetch_request(api, caller_key, offboarded["id"])
    assert (first["status"], first["failure"]["code"]) == ("cancelled", "cancelled")
    assert (second["status"], second["failure"]["code"]) == ("cancelled", "user_offboarded")
