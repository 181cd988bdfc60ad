"""Tailscale's token endpoint refuses in RFC 6749's shape or in its own ``{"message"}``: a
spent code and a revoked grant mean "consent again" for the person and the caller alike."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest

from tests.conftest import bearer
from tests.helpers.browser import Browser, query_of
from tests.helpers.steps import Sessions, create_request, expire_access_tokens, new_user

SHAPES = ["rfc6749", "message"]
EVERYTHING = {"start": "2000-01-01T00:00:00Z", "end": "2100-01-01T00:00:00Z"}


async def callback_url(browser: Browser, request: dict[str, Any]) -> str:
    """Walk the consent screen for ``request``; the callback URL, not yet followed."""
    authorize = await browser.open_consent(request["consent_url"])
    return await browser.decide(authorize, "alice@example.com")


def with_code(url: str, code: str) -> str:
    parts = urlsplit(url)
    query = {**query_of(url), "code": code}
    return parts._replace(query=urlencode(query)).geturl()


async def consent_then_replay_its_code(
    api: httpx.AsyncClient, browser: Browser, key: str, user: str
) -> tuple[dict[str, Any], httpx.Response]:
    """One request consents; a second request's callback then carries the first, spent code.

    Tailscale refuses the replay and revokes the grant the first redemption made.
    """
    first = await create_request(api, key, user, hostname="shape-1")
    second = await create_request(api, key, user, hostname="shape-2")
    first_url = await callback_url(browser, first)
    assert (await browser.get(first_url)).status_code == 303
    second_url = await callback_url(browser, second)
    replayed = await browser.get(with_code(second_url, query_of(first_url)["code"]))
    return first, replayed


async def grant_failures(api: httpx.AsyncClient, key: str, user: str) -> list[str]:
    params = {**EVERYTHING, "user_id": user, "event": "GRANT.CREATE"}
    trail = await api.get("/v1/audit", params=params, headers=bearer(key))
    return [event["error"] for event in trail.json()["logs"] if event["error"]]


@pytest.mark.parametrize("shape", SHAPES)
async def test_a_spent_code_tells_the_person_to_open_the_link_again(
    reusable_api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    caller_key: str,
    shape: str,
) -> None:
    switches = {"grant_mode": "reusable", "token_error_shape": shape}
    assert (await sandbox.patch("/sandbox/switches", json=switches)).status_code == 200
    user = new_user()
    _, page = await consent_then_replay_its_code(reusable_api, browser, caller_key, user)
    assert page.status_code == 502
    assert "Please open the consent link again" in page.text
    assert await grant_failures(reusable_api, caller_key, user) == [
        "code exchange failed: consent_required"
    ]
    listed = await reusable_api.get(
        f"/v1/users/{user}/provisioning-requests", headers=bearer(caller_key)
    )
    statuses = sorted(item["status"] for item in listed.json()["items"])
    assert statuses == ["awaiting_consent", "ready"]


@pytest.mark.parametrize("shape", SHAPES)
async def test_a_revoked_grant_asks_the_caller_for_consent_again(
    reusable_api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    caller_key: str,
    it_sessions: Sessions,
    shape: str,
) -> None:
    switches = {"grant_mode": "reusable", "token_error_shape": shape}
    assert (await sandbox.patch("/sandbox/switches", json=switches)).status_code == 200
    user = new_user()
    ready, _ = await consent_then_replay_its_code(reusable_api, browser, caller_key, user)
    await expire_access_tokens(it_sessions, user)
    claim = await reusable_api.post(
        f"/v1/provisioning-requests/{ready['id']}/claim", headers=bearer(caller_key)
    )
    assert claim.status_code == 409, claim.text
    assert claim.json()["code"] == "consent_required"
    assert claim.json()["consent_url"].startswith(f"{reusable_api.base_url}/authorize?request=")
    grants = (await reusable_api.get(f"/v1/users/{user}", headers=bearer(caller_key))).json()
    assert [grant["status"] for grant in grants["grants"]] == ["needs_consent"]


@pytest.mark.parametrize("shape", SHAPES)
async def test_refused_app_credentials_are_an_upstream_error_not_a_consent(
    reusable_api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    caller_key: str,
    it_sessions: Sessions,
    shape: str,
) -> None:
    switches = {"grant_mode": "reusable", "token_error_shape": shape}
    assert (await sandbox.patch("/sandbox/switches", json=switches)).status_code == 200
    user = new_user()
    request = await create_request(reusable_api, caller_key, user, hostname="creds")
    assert (await browser.consent(request["consent_url"], "alice@example.com")).status_code == 303
    await expire_access_tokens(it_sessions, user)
    forced = {"forced_oauth_error": "invalid_client"}
    assert (await sandbox.patch("/sandbox/switches", json=forced)).status_code == 200
    claim = await reusable_api.post(
        f"/v1/provisioning-requests/{request['id']}/claim", headers=bearer(caller_key)
    )
    assert (claim.status_code, claim.json()["code"]) == (502, "upstream_oauth_error")
    grants = (await reusable_api.get(f"/v1/users/{user}", headers=bearer(caller_key))).json()
    assert [grant["status"] for grant in grants["grants"]] == ["active"]
