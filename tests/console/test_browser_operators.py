"""/console in a real browser (Debian's Chromium, headless), signed in through the serve
stand-in: an operator follows a request's timeline and sees every page; anyone else is
refused. Every page is saved under ``test-artifacts/console-*.png``."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import httpx

from tests.helpers.chromium import chromium, needs_chromium, off_site_requests, save_screenshot
from tests.helpers.console_flows import consented_request, expect_login, joined_device
from tests.helpers.serve_standin import ConsoleStack
from tests.helpers.steps import create_request

pytestmark = needs_chromium
OPERATOR = "olga@ops.example.com"


async def requests_for_a_user(stack: ConsoleStack) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A user with one consented request (ready) and one still awaiting consent."""
    key = await stack.new_caller("provision", "read")
    admin = await stack.new_caller("admin")
    user, login = f"priya-{uuid.uuid4().hex[:6]}", "carol@example.com"
    async with httpx.AsyncClient(base_url=stack.service_url, timeout=30) as api:
        await expect_login(api, admin, user, login)
        ready = await consented_request(stack, api, key, user, login, "priya-devbox")
        waiting = await create_request(api, key, user, hostname="priya-laptop")
        async with httpx.AsyncClient(base_url=stack.sandbox_url, timeout=30) as sandbox:
            joined = await joined_device(api, sandbox, key, ready["id"], "priya-devbox")
    return user, joined, waiting


async def linked_timeline(stack: ConsoleStack, request_id: str) -> None:
    """Wait for the background job to link the device's NODE.CREATE to Tailscale's event."""
    async with httpx.AsyncClient(base_url=stack.as_login(OPERATOR), timeout=30) as olga:
        for _ in range(100):  # the link job runs every dozen background ticks
            page = await olga.get(f"/console/requests/{request_id}")
            if re.search(r'<td class="mono">[^<—]+</td>\s*</tr>', page.text):
                return
            await asyncio.sleep(0.2)
    raise AssertionError(f"the device of {request_id} was never linked to Tailscale's event")


async def test_an_operator_follows_a_request_to_its_timeline_and_cancels_one(
    console_stack: ConsoleStack,
) -> None:
    user, joined, waiting = await requests_for_a_user(console_stack)
    await linked_timeline(console_stack, joined["id"])
    base = console_stack.as_login(OPERATOR)
    async with chromium() as browser:
        page = await browser.new_page()
        off_site = off_site_requests(page, base)
        await page.goto(f"{base}/console")
        assert OPERATOR in await page.inner_text("header")
        await page.fill("#user", user)
        await page.click("button:has-text('Filter')")
        await page.wait_for_url(f"{base}/console?*user={user}*")
        await save_screenshot(page, "console-requests")
        await page.click(f"a[href='/console/requests/{joined['id']}']")
        await page.wait_for_url(f"{base}/console/requests/{joined['id']}")
        timeline = await page.inner_text("main")
        await save_screenshot(page, "console-timeline")
        # The request's life in order, its device's creation beside Tailscale's own event.
        steps = ["PROVISIONING_REQUEST.CREATE", "GRANT.CREATE", "API_KEY.CREATE", "NODE.CREATE"]
        assert [timeline.index(step) for step in steps] == sorted(
            timeline.index(step) for step in steps
        )
        node_row = await page.inner_text("tr:has-text('NODE.CREATE')")
        assert node_row.rstrip().split("\t")[-1] not in ("", "—")
        await page.goto(f"{base}/console/requests/{waiting['id']}")
        await page.click("button:has-text('Cancel this request')")
        await save_screenshot(page, "console-confirm-cancel")
        await page.click("button:has-text('Cancel the request')")
        await page.wait_for_selector("text=Request cancelled")
        await save_screenshot(page, "console-cancelled")
        await page.goto(f"{base}/console/requests/{waiting['id']}")
        after = await page.inner_text("main")
    assert "olga@ops.example.com" in after  # the cancellation, with the operator as actor
    assert "cancelled" in after
    assert off_site == []


async def test_every_console_page_renders_for_an_operator(console_stack: ConsoleStack) -> None:
    user, _, _ = await requests_for_a_user(console_stack)
    base = console_stack.as_login(OPERATOR)
    pages = {
        "console-users": "/console/users",
        "console-user": f"/console/users/{user}",
        "console-callers": "/console/callers",
        "console-audit": f"/console/audit?user={user}",
        "console-health": "/console/health",
    }
    async with chromium() as browser:
        page = await browser.new_page()
        for name, path in pages.items():
            answer = await page.goto(f"{base}{path}")
            assert answer is not None
            assert answer.status == 200, (path, await page.inner_text("main"))
            await save_screenshot(page, name)
        await page.goto(f"{base}/console/audit")
        await page.click("button:has-text('Verify the newest')")
        await save_screenshot(page, "console-verify")
        verified = await page.inner_text("main")
        await page.goto(f"{base}/console/users/{user}")
        await page.click("button:has-text('Offboard')")
        await save_screenshot(page, "console-confirm-offboard")
        question = await page.inner_text("main")
    assert "Events checked" in verified
    assert f"Offboard {user}?" in question


async def test_a_tailnet_user_who_is_not_an_operator_is_refused(
    console_stack: ConsoleStack,
) -> None:
    base = console_stack.as_login("alice@example.com")
    async with chromium() as browser:
        page = await browser.new_page()
        answer = await page.goto(f"{base}/console")
        assert answer is not None
        await save_screenshot(page, "console-refused")
        body = await page.inner_text("body")
        status = answer.status
    assert status == 403
    assert "Operators only" in body
    assert "alice@example.com" in body
