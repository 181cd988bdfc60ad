"""The consent flow in a real browser (Debian's Chromium, headless), as a person clicks it."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import bearer
from tests.integration.conftest import Stack

CHROMIUM = Path(os.environ.get("TSPROV_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (make test installs it)"
)


async def test_a_person_approves_in_a_browser_and_lands_on_a_clean_result_page(
    stack: Stack,
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    caller_key: str,
    tmp_path: Path,
) -> None:
    from playwright.async_api import async_playwright

    user = f"browser-{uuid.uuid4().hex[:8]}"
    created = await api.post(
        f"/v1/users/{user}/provisioning-requests", headers=bearer(caller_key), json={}
    )
    request = created.json()
    third_party: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
        )
        page = await browser.new_page()
        page.on(
            "request",
            lambda req: (
                third_party.append(req.url)
                if not req.url.startswith((stack.service_url, stack.sandbox_url))
                else None
            ),
        )
        await page.goto(request["consent_url"])
        # tsprov's own page first: who asks, for whom; nothing has reached Tailscale yet.
        confirmation = await page.inner_text("main")
        assert "Continue to Tailscale" in confirmation
        assert user in confirmation
        await page.screenshot(path=str(tmp_path / "confirm.png"))
        await page.click("text=Continue to Tailscale")
        await page.wait_for_url(f"{stack.sandbox_url}/**")
        assert "wants access to your tailnet" in await page.content()
        await page.select_option("select[name=login]", "carol@example.com")
        await page.click("button[value=approve]")
        await page.wait_for_url(f"{stack.service_url}/done")
        await page.screenshot(path=str(tmp_path / "done.png"))
        body = await page.inner_text("body")
        final_url = page.url
        cookies = await page.context.cookies()
        await browser.close()
    assert "All set" in body
    assert "code=" not in final_url
    assert "state=" not in final_url
    assert third_party == []
    flow_cookie = next(cookie for cookie in cookies if cookie["name"] == "tsprov_flow")
    assert flow_cookie["httpOnly"]
    assert flow_cookie["sameSite"] == "Lax"
    ready = await api.get(f"/v1/provisioning-requests/{request['id']}", headers=bearer(caller_key))
    assert ready.json()["status"] == "ready"
