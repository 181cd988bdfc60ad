"""The consent pages in a real browser (Debian's Chromium, headless), as a person clicks them.

Every page is saved under ``test-artifacts/`` for a person to look at.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.conftest import bearer
from tests.helpers.chromium import chromium, needs_chromium, off_site_requests, save_screenshot
from tests.integration.conftest import Stack

pytestmark = needs_chromium


async def _new_request(api: httpx.AsyncClient, key: str, **body: str) -> dict[str, str]:
    user = f"browser-{uuid.uuid4().hex[:8]}"
    created = await api.post(
        f"/v1/users/{user}/provisioning-requests", headers=bearer(key), json=body
    )
    assert created.status_code == 201, created.text
    request: dict[str, str] = created.json()
    return request


async def continue_to_tailscale(page: Any, stack: Stack) -> None:
    """Press the confirmation page's button and land on Tailscale's consent screen."""
    await page.click("text=Continue to Tailscale")
    await page.wait_for_url(f"{stack.sandbox_url}/**")
    assert "wants access to your tailnet" in await page.content()


async def test_a_person_approves_and_the_result_page_names_user_device_and_next_step(
    stack: Stack, api: httpx.AsyncClient, caller_key: str
) -> None:
    request = await _new_request(api, caller_key, hostname="devbox-browser")
    async with chromium() as browser:
        page = await browser.new_page()
        off_site = off_site_requests(page, stack.service_url, stack.sandbox_url)
        await page.goto(request["consent_url"])
        # tsprov's own page first: who asks, for whom; nothing has reached Tailscale yet.
        confirmation = await page.inner_text("main")
        assert "Continue to Tailscale" in confirmation
        assert request["user_id"] in confirmation
        assert "devbox-browser" in confirmation
        await save_screenshot(page, "consent-confirmation")
        await continue_to_tailscale(page, stack)
        await save_screenshot(page, "consent-screen")
        await page.select_option("select[name=login]", "carol@example.com")
        await page.click("button[value=approve]")
        await page.wait_for_url(f"{stack.service_url}/done")
        await save_screenshot(page, "result-page")
        body = await page.inner_text("body")
        final_url = page.url
        cookies = await page.context.cookies()
    assert "Device approved" in body
    assert f"the device devbox-browser for {request['user_id']}" in body
    assert "collects its key" in body
    assert "code=" not in final_url
    assert "state=" not in final_url
    assert off_site == []
    flow_cookie = next(cookie for cookie in cookies if cookie["name"] == "tsprov_flow")
    assert flow_cookie["httpOnly"]
    assert flow_cookie["sameSite"] == "Lax"
    ready = await api.get(f"/v1/provisioning-requests/{request['id']}", headers=bearer(caller_key))
    assert ready.json()["status"] == "ready"


async def test_done_opened_without_a_consent_claims_nothing(stack: Stack) -> None:
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(f"{stack.service_url}/done")
        await save_screenshot(page, "done-without-consent")
        body = await page.inner_text("body")
    assert "Nothing to show here" in body
    assert "approved" not in body.lower().replace("not approved", "")


async def test_a_declined_consent_says_what_to_do(
    stack: Stack, api: httpx.AsyncClient, caller_key: str
) -> None:
    request = await _new_request(api, caller_key)
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(request["consent_url"])
        await continue_to_tailscale(page, stack)
        await page.click("button[value=deny]")
        await page.wait_for_url(f"{stack.service_url}/callback*")
        await save_screenshot(page, "consent-declined")
        body = await page.inner_text("body")
    assert "Consent declined" in body
    assert "Open the consent link again" in body


async def test_a_problem_page_says_what_the_code_means_and_what_to_do(stack: Stack) -> None:
    async with chromium() as browser:
        page = await browser.new_page()
        answer = await page.goto(f"{stack.service_url}/problems/not_ready")
        await save_screenshot(page, "problem-not-ready")
        body = await page.inner_text("body")
    assert answer is not None
    assert answer.status == 200
    assert "Request not ready (not_ready)" in body
    assert "long-poll the request" in body
