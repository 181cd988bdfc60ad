"""/docs in a real browser: rendered from tsprov's own assets, authorized, one call run."""

from __future__ import annotations

import httpx

from tests.conftest import bearer
from tests.helpers.chromium import chromium, needs_chromium, off_site_requests, save_screenshot
from tests.helpers.steps import new_user
from tests.integration.conftest import Stack

pytestmark = needs_chromium
GET_USER = ".opblock-get:has(.opblock-summary-path[data-path='/v1/users/{user_id}'])"


async def test_the_docs_render_offline_and_run_an_authorized_call(
    stack: Stack, api: httpx.AsyncClient, caller_key: str
) -> None:
    user = new_user()
    created = await api.post(
        f"/v1/users/{user}/provisioning-requests", headers=bearer(caller_key), json={}
    )
    assert created.status_code == 201
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        off_site = off_site_requests(page, stack.service_url)
        await page.goto(f"{stack.service_url}/docs")
        await page.wait_for_selector(".opblock")
        rendered = await page.locator(".opblock").count()
        await save_screenshot(page, "api-docs")

        await page.click("button.authorize")
        await page.fill(".modal-ux input", caller_key)
        await page.click(".modal-ux button.authorize")
        await page.click(".modal-ux button.btn-done")

        operation = page.locator(GET_USER)
        await operation.locator(".opblock-summary").click()
        await operation.locator("input[placeholder=user_id]").fill(user)
        await operation.locator("button.execute").click()
        status = operation.locator(".live-responses-table tbody .response-col_status").first
        await status.wait_for()
        await operation.scroll_into_view_if_needed()
        await save_screenshot(operation, "api-docs-call", full_page=False)
        answered = (await status.inner_text()).strip()
        shown = await operation.locator(".live-responses-table .microlight").first.inner_text()
    assert rendered >= 19
    assert off_site == []
    assert answered == "200"
    assert user in shown


async def test_redoc_renders_from_tsprovs_own_assets(stack: Stack) -> None:
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        off_site = off_site_requests(page, stack.service_url)
        await page.goto(f"{stack.service_url}/redoc")
        await page.locator("h2", has_text="Ask for a device for a user").wait_for()
        await save_screenshot(page, "api-redoc", full_page=False)
    assert off_site == []
