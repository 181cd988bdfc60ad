"""Every console action needs the page's CSRF token and a confirmation; GET never acts."""

from __future__ import annotations

import re
from html import unescape

import httpx

from service.console import csrf
from service.settings import IdentityHeaders
from service.state import AppContext
from tests.security.console_app import SERVE_HEADERS, app_with_probe, browser_from

BOB = {**SERVE_HEADERS, "Tailscale-User-Login": "bob@example.com"}


async def page_token(browser: httpx.AsyncClient, login: str) -> str:
    """The token a page of tsprov would put in its forms for ``login`` in this browser."""
    await browser.get("/probe/whoami", headers=SERVE_HEADERS)  # sets the browser's secret
    return csrf.form_token(browser.cookies["tsprov_console"], login)


def field(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found is not None, page
    return unescape(found.group(1))


async def test_csrf_missing_or_wrong_is_refused_with_a_page(context: AppContext) -> None:
    acted: list[str] = []
    app = app_with_probe(context, acted, identity_headers=IdentityHeaders.TAILSCALE_SERVE)
    async with browser_from(app, "127.0.0.1") as browser:
        await browser.get("/probe/whoami", headers=SERVE_HEADERS)  # sets the browser's secret
        for form in ({"confirmed": "yes"}, {"csrf_token": "forged", "confirmed": "yes"}):
            answer = await browser.post("/probe/act", headers=SERVE_HEADERS, data=form)
            assert answer.status_code == 403
            assert answer.headers["content-type"].startswith("text/html")
            assert "Action not accepted" in answer.text
    assert acted == []


async def test_a_token_for_alice_is_refused_for_bob_and_in_another_browser(
    context: AppContext,
) -> None:
    acted: list[str] = []
    app = app_with_probe(context, acted, identity_headers=IdentityHeaders.TAILSCALE_SERVE)
    async with browser_from(app, "127.0.0.1") as browser:
        first = await browser.post("/probe/act", headers=SERVE_HEADERS, data={})
        assert first.status_code == 403  # no cookie yet: the form came from no page of ours
        token = await page_token(browser, "alice@example.com")
        as_bob = await browser.post(
            "/probe/act", headers=BOB, data={"csrf_token": token, "confirmed": "yes"}
        )
        assert as_bob.status_code == 403
    async with browser_from(app, "127.0.0.1") as elsewhere:
        await elsewhere.get("/probe/whoami", headers=SERVE_HEADERS)
        other = await elsewhere.post(
            "/probe/act", headers=SERVE_HEADERS, data={"csrf_token": token, "confirmed": "yes"}
        )
        assert other.status_code == 403
    assert acted == []


async def test_the_first_post_asks_and_only_the_confirmed_one_acts(context: AppContext) -> None:
    acted: list[str] = []
    app = app_with_probe(context, acted, identity_headers=IdentityHeaders.TAILSCALE_SERVE)
    async with browser_from(app, "127.0.0.1") as browser:
        token = await page_token(browser, "alice@example.com")
        asked = await browser.post("/probe/act", headers=SERVE_HEADERS, data={"csrf_token": token})
        assert asked.status_code == 200
        assert "Act?" in asked.text
        assert field(asked.text, "confirmed") == "yes"
        assert acted == []
        assert (await browser.get("/probe/act", headers=SERVE_HEADERS)).status_code == 405
        assert acted == []
        done = await browser.post(
            "/probe/act",
            headers=SERVE_HEADERS,
            data={"csrf_token": field(asked.text, "csrf_token"), "confirmed": "yes"},
        )
        assert done.status_code == 200
    assert acted == ["alice@example.com"]


async def test_console_pages_send_a_strict_policy(context: AppContext) -> None:
    app = app_with_probe(context, [], identity_headers=IdentityHeaders.TAILSCALE_SERVE)
    async with browser_from(app, "127.0.0.1") as browser:
        page = await browser.get("/probe/whoami", headers=SERVE_HEADERS)
        style = await browser.get("/console-assets/console.css")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "style-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert "<style" not in page.text
    assert "<script" not in page.text
    assert 'lang="en"' in page.text
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert style.status_code == 200
    assert style.headers["content-type"].startswith("text/css")
