"""/me in a real browser (Debian's Chromium), signed in through the tailscale serve
stand-in, driven by the keyboard alone. Every page is saved under ``test-artifacts/me-*``."""

from __future__ import annotations

from typing import Any

import httpx

from tests.helpers.chromium import chromium, needs_chromium, off_site_requests, save_screenshot
from tests.helpers.console_flows import consented_request, expect_login, joined_device
from tests.helpers.serve_standin import ConsoleStack
from tests.helpers.steps import create_request, fetch_request, new_user

pytestmark = needs_chromium
# The browser tests' own sandbox user: nothing else in the session acts as carol, so her
# page holds only what this file made.
CAROL = "carol@example.com"
FOCUSED_LABEL = "document.activeElement && document.activeElement.getAttribute('aria-label')"


async def tab_to(page: Any, label_start: str) -> None:
    """Press Tab until the focused control's label starts with ``label_start``."""
    for _ in range(40):
        await page.keyboard.press("Tab")
        label = await page.evaluate(FOCUSED_LABEL)
        if label and label.startswith(label_start):
            return
    raise AssertionError(f"no control labelled {label_start!r} is reachable with Tab")


async def tab_to_button(page: Any, text: str) -> None:
    """Press Tab until the focused element is the button saying ``text``; it must show focus."""
    for _ in range(20):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(
            "[document.activeElement.tagName, document.activeElement.textContent.trim(),"
            " getComputedStyle(document.activeElement).outlineStyle]"
        )
        if focused[0] == "BUTTON" and focused[1] == text:
            assert focused[2] == "solid"  # the focus ring a keyboard user follows
            return
    raise AssertionError(f"no button {text!r} is reachable with Tab")


async def act_with_keyboard(page: Any, control: str, button: str, done: str, shots: str) -> None:
    """From /me, reach ``control`` with Tab, press it, confirm with ``button``, see ``done``;
    the confirmation and the result saved as ``<shots>-confirm`` and ``<shots>-done``."""
    await tab_to(page, control)
    await page.keyboard.press("Enter")
    await page.wait_for_selector("input[name=confirmed]", state="attached")
    await save_screenshot(page, f"{shots}-confirm")
    await tab_to_button(page, button)
    await page.keyboard.press("Enter")
    await page.wait_for_selector(f"h1:has-text('{done}')")
    await save_screenshot(page, f"{shots}-done")


async def test_carol_withdraws_a_grant_and_declines_a_request_with_the_keyboard(
    console_stack: ConsoleStack, console_api: httpx.AsyncClient
) -> None:
    api = console_api
    key, admin = await console_stack.new_caller(), await console_stack.new_caller("admin")
    user = new_user()
    await expect_login(api, admin, user, CAROL)
    waiting = await create_request(api, key, user, hostname="carol-laptop")
    ready = await consented_request(console_stack, api, key, user, CAROL, "carol-desktop")
    async with httpx.AsyncClient(base_url=console_stack.sandbox_url, timeout=30) as sandbox:
        shown = await consented_request(console_stack, api, key, user, CAROL, "carol-devbox")
        await joined_device(api, sandbox, key, shown["id"], "carol-devbox")
    base = console_stack.as_login(CAROL)

    async with chromium() as browser:
        page = await browser.new_page()
        off_site = off_site_requests(page, base)
        await page.goto(f"{base}/me")
        background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(246, 247, 249)"  # the stylesheet loaded under the CSP
        listing = await page.inner_text("main")
        assert "carol-laptop" in listing
        assert "carol-devbox" in listing
        assert "Signed in to the tailnet as" in await page.inner_text("header")
        await save_screenshot(page, "me-list")

        await act_with_keyboard(
            page, "Withdraw grant", "Withdraw", "Grant withdrawn", "me-withdraw"
        )
        await page.goto(f"{base}/me")
        await act_with_keyboard(
            page, "Decline the request", "Decline", "Request declined", "me-decline"
        )

        await page.goto(f"{base}/me/requests/{shown['id']}")
        assert "joined" in await page.inner_text("main")
        await save_screenshot(page, "me-request-history")
    assert off_site == []
    withdrawn = await fetch_request(api, key, ready["id"])
    declined = await fetch_request(api, key, waiting["id"])
    assert (withdrawn["status"], withdrawn["failure"]["code"]) == ("cancelled", "grant_withdrawn")
    assert (declined["status"], declined["failure"]["code"]) == ("cancelled", "user_declined")


async def test_without_serve_or_with_a_spoofed_header_the_page_shows_nothing(
    console_stack: ConsoleStack,
) -> None:
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(f"{console_stack.service_url}/me")
        plain = await page.inner_text("main")
        await save_screenshot(page, "me-not-signed-in")
        spoofing = await browser.new_page(extra_http_headers={"Tailscale-User-Login": CAROL})
        await spoofing.goto(f"{console_stack.service_url}/me")
        spoofed = await spoofing.inner_text("body")
        await save_screenshot(spoofing, "me-spoofed-header")
    assert "Sign in through Tailscale Serve" in plain
    assert "Sign in through Tailscale Serve" in spoofed
    assert CAROL not in spoofed
