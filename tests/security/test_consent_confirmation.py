"""security.md item 34: a consent link opens tsprov's own page; only its POST goes on."""

from __future__ import annotations

import re

import httpx

from tests.helpers.browser import Browser, query_of
from tests.helpers.security_flows import upstream_calls
from tests.helpers.steps import create_request, new_user

# Background jobs may list devices (and fetch the observer's own token) meanwhile; nothing
# may reach the consent screen or redeem a code.
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


async def test_item_34_a_consent_link_shows_who_asks_and_never_redirects_by_itself(
    sandbox: httpx.AsyncClient, api: httpx.AsyncClient, browser: Browser, caller_key: str
) -> None:
    user = new_user()
    request = await create_request(api, caller_key, user, hostname="devbox-7")
    await sandbox.delete("/sandbox/requests")

    page = await browser.get(request["consent_url"])

    assert page.status_code == 200
    assert "location" not in page.headers
    assert page.headers["content-type"].startswith("text/html")
    for fact in (user, "devbox-7", "Continue to Tailscale", "Link valid until"):
        assert fact in page.text
    assert 'method="post" action="/authorize"' in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    # The page's button may lead to Tailscale's login host, and nowhere else.
    assert "form-action 'self' http://127.0.0.1:" in page.headers["content-security-policy"]
    consent_calls = [
        call
        for call in await upstream_calls(sandbox)
        if call["route"] == "authorize" or call["grant_type"] == "authorization_code"
    ]
    assert consent_calls == []


async def test_item_34_only_the_pages_post_with_its_token_and_cookie_continues(
    api: httpx.AsyncClient, browser: Browser, caller_key: str
) -> None:
    request = await create_request(api, caller_key, new_user())
    link = request["consent_url"]
    token = query_of(link)["request"]
    page = await browser.get(link)
    csrf = _TOKEN.search(page.text)
    assert csrf is not None
    target = httpx.URL(link).join("/authorize")

    forged = await browser.client.post(target, data={"request": token, "csrf_token": "x" * 43})
    missing = await browser.client.post(target, data={"request": token})
    async with httpx.AsyncClient() as elsewhere:  # the right token, from another browser
        foreign = await elsewhere.post(target, data={"request": token, "csrf_token": csrf[1]})
    genuine = await browser.client.post(target, data={"request": token, "csrf_token": csrf[1]})

    for refused in (forged, missing, foreign):
        assert 400 <= refused.status_code < 500
        assert refused.headers["content-type"].startswith("text/html")
        assert "location" not in refused.headers
    assert genuine.status_code == 303
    sent = query_of(genuine.headers["location"])
    assert sent["state"] == csrf[1]
    assert sent["code_challenge_method"] == "S256"
