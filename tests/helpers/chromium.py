"""Debian's Chromium, headless, driven by Playwright: never a browser build of its own.

Pages are screenshotted into ``test-artifacts/`` (ignored by git) so a person can look at
what the tests saw.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

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
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (make test installs it)"
)


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """A headless browser; ``await browser.new_page()`` for a fresh cookie jar each time."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield browser
        finally:
            await browser.close()


async def save_screenshot(page: Any, name: str, *, full_page: bool = True) -> Path:
    """The page (or a locator's element) as ``test-artifacts/<name>.png``."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    if full_page:
        await page.screenshot(path=str(path), full_page=True)
    else:
        await page.screenshot(path=str(path))
    return path


def off_site_requests(page: Any, *origins: str) -> list[str]:
    """Collects every URL the page fetches outside ``origins``: a CDN, a font, a tracker.

    A request the page's content security policy refused never left the browser.
    """
    seen: list[str] = []
    # blob: URLs are made by the page itself (ReDoc's worker), not fetched from anywhere.
    local = (*origins, "blob:")

    def on_request(request: Any) -> None:
        if not request.url.startswith(local):
            seen.append(request.url)

    def on_failed(request: Any) -> None:
        if request.failure in ("csp", "net::ERR_BLOCKED_BY_CSP") and request.url in seen:
            seen.remove(request.url)

    page.on("request", on_request)
    page.on("requestfailed", on_failed)
    return seen
