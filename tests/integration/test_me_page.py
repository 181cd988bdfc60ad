"""/me over real HTTP, signed in through the tailscale serve stand-in (issue 19, done-when):
alice sees hers and not bob's; withdrawing revokes at the sandbox; declining reaches the
caller; her consent link opened as bob is refused before Tailscale."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from service.console import csrf
from tests.conftest import bearer
from tests.helpers.browser import Browser
from tests.helpers.console_flows import (
    action_token,
    confirm_action,
    consented_request,
    expect_login,
    joined_device,
    sandbox_keys,
)
from tests.helpers.serve_standin import ConsoleStack
from tests.helpers.stack import SANDBOX_ADMIN
from tests.helpers.steps import create_request, fetch_request, new_user

ALICE = "alice@example.com"
BOB = "bob@example.com"


@pytest.fixture
def api(console_api: httpx.AsyncClient) -> httpx.AsyncClient:
    return console_api


@pytest.fixture
async def sandbox(console_stack: ConsoleStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=console_stack.sandbox_url, timeout=30) as client:
        yield client


@pytest.fixture
async def keys(console_stack: ConsoleStack) -> tuple[str, str]:
    """A caller key (provision, read) and an admin key."""
    return await console_stack.new_caller(), await console_stack.new_caller("admin")


@pytest.fixture
async def alices(api: httpx.AsyncClient, keys: tuple[str, str]) -> str:
    """A fresh user whose expected login is alice's."""
    user = new_user()
    await expect_login(api, keys[1], user, ALICE)
    return user


async def authorize_calls(sandbox: httpx.AsyncClient) -> int:
    """How many times a browser opened the sandbox's consent screen."""
    log = await sandbox.get("/sandbox/requests", params={"route": "authorize"})
    return len(log.json()["requests"])


def signed_in(stack: ConsoleStack, login: str) -> httpx.AsyncClient:
    """A browser reaching tsprov through the stand-in as ``login``, keeping its cookies."""
    return httpx.AsyncClient(base_url=stack.as_login(login), timeout=60)


async def test_alices_page_lists_her_requests_grants_and_devices_and_not_bobs(
    console_stack: ConsoleStack,
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    keys: tuple[str, str],
) -> None:
    key, admin = keys
    hers, his = new_user(), new_user()
    await expect_login(api, admin, hers, ALICE)
    await expect_login(api, admin, his, BOB)
    waiting = await create_request(api, key, hers, hostname="alice-waiting")
    await create_request(api, key, his, hostname="bob-waiting")
    ready = await consented_request(console_stack, api, key, hers, ALICE, "alice-box")
    joined = await joined_device(api, sandbox, key, ready["id"], "alice-box")
    bobs = await consented_request(console_stack, api, key, his, BOB, "bob-box")
    await joined_device(api, sandbox, key, bobs["id"], "bob-box")

    async with signed_in(console_stack, ALICE) as browser:
        page = await browser.get("/me")
        assert page.status_code == 200
        text = page.text
        assert "alice-waiting" in text
        assert f"/me/requests/{waiting['id']}/decline" in text
        assert joined["device"]["node_id"] in text
        assert f"/me/requests/{ready['id']}" in text
        assert hers in text
        for foreign in ("bob-waiting", "bob-box", his, bobs["id"]):
            assert foreign not in text
        assert "tskey-" not in text
        history = await browser.get(f"/me/requests/{ready['id']}")
        assert history.status_code == 200
        assert "joined" in history.text
        refused = await browser.get(f"/me/requests/{bobs['id']}")
        assert refused.status_code == 404
        assert "bob-box" not in refused.text


async def test_withdrawing_her_grant_revokes_it_at_the_sandbox(
    console_stack: ConsoleStack,
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    keys: tuple[str, str],
    alices: str,
) -> None:
    key, user = keys[0], alices
    before = await sandbox_keys(sandbox)
    ready = await consented_request(console_stack, api, key, user, ALICE, "withdrawn-box")
    [key_id] = [found for found in await sandbox_keys(sandbox) if found not in before]

    user_info = await api.get(f"/v1/users/{user}", headers=bearer(key))
    [grant] = user_info.json()["grants"]
    withdraw = f"/me/grants/{grant['id']}/withdraw"
    async with signed_in(console_stack, BOB) as intruder:
        page = (await intruder.get("/me")).text
        assert grant["id"] not in page
        # bob's own valid token, on a form he made for alice's grant: not his to withdraw.
        token = csrf.form_token(intruder.cookies["tsprov_console"], BOB)
        forged = await intruder.post(withdraw, data={"csrf_token": token, "confirmed": "yes"})
        assert forged.status_code == 404
    assert (await api.get(f"/v1/users/{user}", headers=bearer(key))).json()["grants"] == [grant]
    async with signed_in(console_stack, ALICE) as browser:
        page = (await browser.get("/me")).text
        done = await confirm_action(browser, page, withdraw)
        assert done.status_code == 200, done.text
        assert "Grant withdrawn" in done.text
        assert "deleted at Tailscale" in done.text

    at_sandbox = await sandbox.get(f"/api/v2/tailnet/-/keys/{key_id}", headers=SANDBOX_ADMIN)
    assert at_sandbox.json()["invalid"] is True
    after = await fetch_request(api, key, ready["id"])
    assert after["status"] == "cancelled"
    assert after["failure"]["code"] == "grant_withdrawn"
    claim = await api.post(f"/v1/provisioning-requests/{ready['id']}/claim", headers=bearer(key))
    assert claim.status_code == 409


async def test_declining_makes_the_caller_see_cancelled_with_the_reason(
    console_stack: ConsoleStack, api: httpx.AsyncClient, keys: tuple[str, str], alices: str
) -> None:
    key, user = keys[0], alices
    request = await create_request(api, key, user, hostname="declined-box")
    action = f"/me/requests/{request['id']}/decline"

    async with signed_in(console_stack, ALICE) as browser:
        page = (await browser.get("/me")).text
        assert (await browser.get(action)).status_code == 405  # a GET never acts
        done = await confirm_action(browser, page, action)
        assert done.status_code == 200, done.text
        assert "Request declined" in done.text

    seen = await fetch_request(api, key, request["id"])
    assert seen["status"] == "cancelled"
    assert seen["failure"]["code"] == "user_declined"
    assert "declined" in seen["failure"]["message"]


async def test_a_request_she_approved_meanwhile_is_not_declined(
    console_stack: ConsoleStack, api: httpx.AsyncClient, keys: tuple[str, str], alices: str
) -> None:
    # /me was open in one tab while she consented in another: the decline she then confirms
    # must not cancel the request she just approved.
    key, user = keys[0], alices
    request = await create_request(api, key, user, hostname="approved-box")
    action = f"/me/requests/{request['id']}/decline"
    async with signed_in(console_stack, ALICE) as browser:
        page = (await browser.get("/me")).text
        asked = await browser.post(action, data={"csrf_token": action_token(page, action)})
        async with Browser(console_stack.sandbox_url) as tab:
            approved = await tab.consent(request["consent_url"], login=ALICE)
        assert approved.status_code == 303, approved.text
        token = action_token(asked.text, action)
        late = await browser.post(action, data={"csrf_token": token, "confirmed": "yes"})

    assert late.status_code == 409, late.text
    assert (await fetch_request(api, key, request["id"]))["status"] == "ready"


async def test_alices_consent_link_opened_as_bob_is_refused_before_tailscale(
    console_stack: ConsoleStack,
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    keys: tuple[str, str],
    alices: str,
) -> None:
    key, user = keys[0], alices
    request = await create_request(api, key, user, hostname="not-bobs")
    link = httpx.URL(request["consent_url"])
    authorizes = await authorize_calls(sandbox)

    async with signed_in(console_stack, BOB) as browser:
        refused = await browser.get(f"/authorize?{link.query.decode()}")
        assert refused.status_code == 403
        assert "signed in to the tailnet as bob@example.com" in refused.text
        assert "csrf_token" not in refused.text  # no button leads on to Tailscale
    async with signed_in(console_stack, ALICE) as browser:
        page = await browser.get(f"/authorize?{link.query.decode()}")
        assert page.status_code == 200
        assert "You are signed in to the tailnet as alice@example.com" in page.text

    assert await authorize_calls(sandbox) == authorizes  # bob's browser never got there
    still = await fetch_request(api, key, request["id"])
    assert still["status"] == "awaiting_consent"
    window = {"start": "2000-01-01T00:00:00Z", "end": "2100-01-01T00:00:00Z", "user_id": user}
    audit = await api.get("/v1/audit", params=window, headers=bearer(key))
    assert audit.status_code == 200, audit.text
    assert "bob@example.com" in audit.text
    assert "identity_mismatch" in audit.text


async def test_removing_her_device_deletes_it_at_the_sandbox(
    console_stack: ConsoleStack,
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    keys: tuple[str, str],
    alices: str,
) -> None:
    key, user = keys[0], alices
    ready = await consented_request(console_stack, api, key, user, ALICE, "removed-box")
    joined = await joined_device(api, sandbox, key, ready["id"], "removed-box")
    node_id = joined["device"]["node_id"]
    assert (await sandbox.get(f"/api/v2/device/{node_id}", headers=SANDBOX_ADMIN)).is_success

    async with signed_in(console_stack, BOB) as intruder:
        page = (await intruder.get("/me")).text
        assert node_id not in page
        forged = await intruder.post(f"/me/devices/{node_id}/remove", data={"confirmed": "yes"})
        assert forged.status_code == 403
    async with signed_in(console_stack, ALICE) as browser:
        page = (await browser.get("/me")).text
        done = await confirm_action(browser, page, f"/me/devices/{node_id}/remove")
        assert done.status_code == 200, done.text
        assert "Device removed" in done.text

    gone = await sandbox.get(f"/api/v2/device/{node_id}", headers=SANDBOX_ADMIN)
    assert gone.status_code == 404


async def test_identity_headers_sent_straight_to_tsprov_name_nobody(
    console_stack: ConsoleStack,
) -> None:
    # tsprov trusts only the stand-in's address here; this client is another loopback peer.
    forged = {"Tailscale-User-Login": ALICE, "X-Forwarded-For": "127.0.0.2"}
    async with httpx.AsyncClient(base_url=console_stack.service_url) as direct:
        page = await direct.get("/me", headers=forged)
    assert page.status_code == 403
    assert "Sign in through Tailscale Serve" in page.text
    assert ALICE not in page.text
