"""security.md items 8-11: what the browser is sent, where it is sent, and who consented."""

from __future__ import annotations

import hashlib
import re
import uuid
from http.cookies import SimpleCookie
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.models import ConsentFlow, ProvisioningRequest
from service.provisioning.create import return_to_allowed
from service.settings import Settings
from tests.conftest import CallerFactory, bearer
from tests.helpers.browser import Browser, confirm_consent, query_of
from tests.helpers.steps import claim_and_join, create_request, fetch_request, new_user
from tests.security.conftest import CREDENTIALS, IDENTITY_FIELD, Stack, StackFactory

# Anything that makes a browser fetch or navigate elsewhere: links, sources, form targets.
OUTSIDE_LOAD = re.compile(r"\b(src|href|action|srcset)\s*=|url\(|@import", re.IGNORECASE)


async def test_item_08_browser_responses_are_no_store_no_referrer_and_load_nothing(
    stack: Stack,
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    caller_key: str,
) -> None:
    request, declined = (
        await create_request(api, caller_key, new_user()),
        await create_request(api, caller_key, new_user()),
    )
    callback_url = await browser.decide(
        await browser.open_consent(request["consent_url"]), "alice@example.com"
    )
    success = await browser.get(callback_url)
    refused = await browser.get(callback_url)
    denied = await browser.consent(declined["consent_url"], "alice@example.com", "deny")
    assert (success.status_code, refused.status_code, denied.status_code) == (303, 400, 200)
    # The final URL carries neither the code nor the state.
    final = httpx.URL(stack.service_url).join(success.headers["location"])
    assert final.path == "/done"
    assert not final.query
    landing = await browser.get(str(final))
    assert landing.status_code == 200

    for response in (success, refused, denied, landing):
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert not OUTSIDE_LOAD.search(response.text), response.text


EVIL_RETURN_TO = ["//evil.example", "https://evil.example", "/\\evil"]
OFF_THE_LIST = [*EVIL_RETURN_TO, "/settings/tokens"]


@pytest.mark.parametrize("return_to", OFF_THE_LIST)
async def test_item_09_return_to_off_the_allowlist_is_refused_at_creation(
    api: httpx.AsyncClient, caller_key: str, return_to: str
) -> None:
    response = await api.post(
        f"/v1/users/{new_user()}/provisioning-requests",
        headers=bearer(caller_key),
        json={"return_to": return_to},
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_failed"


async def test_item_09_an_allowlisted_return_to_is_where_the_callback_lands(
    stack: Stack,
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    caller_key: str,
) -> None:
    request = await create_request(api, caller_key, new_user(), return_to="/welcome/team")
    landed = await browser.consent(request["consent_url"], "alice@example.com")
    assert landed.status_code == 303
    assert landed.headers["location"] == f"{stack.service_url}/welcome/team"


@pytest.mark.parametrize("return_to", OFF_THE_LIST)
async def test_item_09_a_stored_return_to_off_the_allowlist_falls_back_to_the_done_page(
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    caller_key: str,
    stack_sessions: async_sessionmaker[AsyncSession],
    return_to: str,
) -> None:
    request = await create_request(api, caller_key, new_user(), return_to="/welcome")
    # As if the allowlist shrank, or the row was edited, after the request was made.
    async with stack_sessions() as session, session.begin():
        await session.execute(
            update(ProvisioningRequest)
            .where(ProvisioningRequest.id == uuid.UUID(request["id"]))
            .values(return_to=return_to)
        )
    landed = await browser.consent(request["consent_url"], "alice@example.com")
    assert landed.status_code == 303
    assert landed.headers["location"] == "/done"


def test_item_09_even_an_allowlist_of_every_path_keeps_return_to_on_this_site(
    settings: Settings,
) -> None:
    everything = settings.model_copy(update={"return_to_allowlist": ["/"]})
    assert return_to_allowed(everything, "/devboxes/42")
    for evil in EVIL_RETURN_TO:
        assert not return_to_allowed(everything, evil), evil


@pytest.mark.parametrize(
    ("public_url", "cookie_name", "secure"),
    [
        ("https://tsprov.test", "__Host-tsprov_flow", True),
        ("http://127.0.0.1:8000", "tsprov_flow", False),
    ],
)
async def test_item_10_flow_cookie_is_opaque_httponly_lax_and_host_bound_under_https(
    make_stack_in_process: StackFactory,
    make_caller: CallerFactory,
    sessions: async_sessionmaker[AsyncSession],
    public_url: str,
    cookie_name: str,
    secure: bool,
) -> None:
    stack = await make_stack_in_process(public_url)
    request = await create_request(stack.api, await make_caller("provision", "read"), new_user())

    page = await stack.browser.get(request["consent_url"])
    assert page.status_code == 200
    jar: SimpleCookie = SimpleCookie(page.headers["set-cookie"])
    assert list(jar) == [cookie_name]
    cookie = jar[cookie_name]
    assert cookie["httponly"] is True
    assert cookie["samesite"].lower() == "lax"
    assert bool(cookie["secure"]) is secure
    # __Host- demands Path=/ and no Domain; browsers drop the cookie otherwise.
    assert cookie["path"] == "/"
    assert cookie["domain"] == ""

    # Opaque: 256 random bits, unrelated to the state or the link, stored only as a hash.
    value = cookie.value
    authorize = await confirm_consent(stack.browser, request["consent_url"])
    assert authorize.status_code == 303
    state = query_of(authorize.headers["location"])["state"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", value)
    assert value not in (state, request["consent_url"].rsplit("=", 1)[-1])
    async with sessions() as session:
        state_hash = hashlib.sha256(state.encode()).digest()
        flow = await session.scalar(select(ConsentFlow).where(ConsentFlow.state_hash == state_hash))
    assert flow is not None
    assert flow.browser_hash == hashlib.sha256(value.encode()).digest()

    # The cookie under this name is the one the callback reads: the flow completes.
    finished = await stack.consent(request["consent_url"])
    assert finished.status_code == 303, finished.text


async def audit_events(api: httpx.AsyncClient, key: str, user: str) -> list[dict[str, Any]]:
    trail = await api.get(
        "/v1/audit",
        params={"start": "2000-01-01T00:00:00Z", "end": "2100-01-01T00:00:00Z", "user_id": user},
        headers=bearer(key),
    )
    assert trail.status_code == 200, trail.text
    events: list[dict[str, Any]] = trail.json()["logs"]
    return events


def refusal_errors(events: list[dict[str, Any]]) -> list[str]:
    return [str(event["error"]) for event in events if event["target"]["type"] == "FAILED_REQUEST"]


async def expect_login(api: httpx.AsyncClient, admin_key: str, user: str, login: str) -> None:
    put = await api.put(
        f"/v1/users/{user}", headers=bearer(admin_key), json={"tailscale_login": login}
    )
    assert put.status_code == 200, put.text


async def test_item_11_consent_by_another_tailscale_account_is_refused_and_audited(
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    caller_key: str,
    admin_key: str,
) -> None:
    switched = await sandbox.patch("/sandbox/switches", json={"identity_field": IDENTITY_FIELD})
    assert switched.status_code == 200
    user, other = new_user(), new_user()
    for name in (user, other):
        await expect_login(api, admin_key, name, "bob@example.com")
    request = await create_request(api, caller_key, user)

    page = await browser.consent(request["consent_url"], "alice@example.com")
    assert page.status_code == 403
    assert "different Tailscale account" in page.text
    after = await fetch_request(api, caller_key, request["id"])
    assert after["status"] == "failed"
    claim = await api.post(
        f"/v1/provisioning-requests/{request['id']}/claim", headers=bearer(caller_key)
    )
    assert (claim.status_code, claim.json()["code"]) == (403, "identity_mismatch")
    assert "auth_key" not in claim.json()
    held = await api.get(f"/v1/users/{user}", headers=bearer(caller_key))
    assert held.json()["grants"] == []
    errors = refusal_errors(await audit_events(api, caller_key, user))
    assert any("'alice@example.com' is not the expected 'bob@example.com'" in e for e in errors)

    # The expected account consenting goes through: the refusal above is about identity.
    matching = await create_request(api, caller_key, other)
    assert (await browser.consent(matching["consent_url"], "bob@example.com")).status_code == 303
    assert (await fetch_request(api, caller_key, matching["id"]))["status"] == "ready"


async def test_item_11_a_device_joined_by_another_account_fails_the_request_and_is_audited(
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    caller_key: str,
    admin_key: str,
) -> None:
    # The token names nobody (identity_field is off), the observer may not read keys and the
    # log does not name who made the key: only the joining device tells (after_join, the
    # development default).
    switched = await sandbox.patch("/sandbox/switches", json={"consent_key_log": "absent"})
    assert switched.status_code == 200
    user = new_user()
    await expect_login(api, admin_key, user, "bob@example.com")
    request = await create_request(api, caller_key, user, hostname="sec-mismatch")
    assert (await browser.consent(request["consent_url"], "alice@example.com")).status_code == 303
    joined = await claim_and_join(api, sandbox, caller_key, request["id"], "sec-mismatch")
    assert joined["user"] == "alice@example.com"

    watched = await api.get(
        f"/v1/provisioning-requests/{request['id']}",
        params={"wait_seconds": 15},
        headers=bearer(caller_key),
    )
    assert watched.json()["status"] == "failed"
    gone = await sandbox.get(
        f"/api/v2/device/{joined['nodeId']}", headers=bearer(CREDENTIALS.admin_token)
    )
    assert gone.status_code == 404
    errors = refusal_errors(await audit_events(api, caller_key, user))
    assert any("'alice@example.com' is not the expected 'bob@example.com'" in e for e in errors)
