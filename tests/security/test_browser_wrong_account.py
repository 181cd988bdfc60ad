"""The wrong-account page in a real browser: what went wrong and what to do, nothing more."""

from __future__ import annotations

import httpx

from tests.helpers.chromium import chromium, needs_chromium, save_screenshot
from tests.helpers.steps import create_request, fetch_request, new_user
from tests.security.conftest import IDENTITY_FIELD, Stack
from tests.security.test_consent_pages import expect_login

pytestmark = needs_chromium


async def test_approving_as_someone_else_shows_what_to_do(
    stack: Stack,
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    caller_key: str,
    admin_key: str,
) -> None:
    switched = await sandbox.patch("/sandbox/switches", json={"identity_field": IDENTITY_FIELD})
    assert switched.status_code == 200
    user = new_user()
    await expect_login(api, admin_key, user, "alice@example.com")
    request = await create_request(api, caller_key, user, hostname="devbox-wrong")
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(request["consent_url"])
        await page.click("text=Continue to Tailscale")  # tsprov's confirmation page first
        await page.wait_for_url(f"{stack.sandbox_url}/**")
        await page.select_option("select[name=login]", "bob@example.com")
        await page.click("button[value=approve]")
        await page.wait_for_url(f"{stack.service_url}/callback*")
        await save_screenshot(page, "wrong-account")
        body = await page.inner_text("body")
    assert "Wrong Tailscale account" in body
    assert "Ask whoever sent the link for a new one" in body
    assert "bob@example.com" not in body
    assert "alice@example.com" not in body
    failed = await fetch_request(api, caller_key, request["id"])
    assert failed["failure"]["code"] == "identity_mismatch"
