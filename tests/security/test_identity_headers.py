"""Identity headers count only when switched on and sent by the trusted proxy (issue 19)."""

from __future__ import annotations

import logging

import pytest

from service.settings import IdentityHeaders
from service.state import AppContext
from tests.security.console_app import SERVE_HEADERS, app_with_probe, browser_from

ON = IdentityHeaders.TAILSCALE_SERVE


async def test_with_headers_off_no_page_or_api_trusts_them_from_loopback(
    context: AppContext,
) -> None:
    app = app_with_probe(context, [], identity_headers=IdentityHeaders.OFF)
    async with browser_from(app, "127.0.0.1") as browser:
        page = await browser.get("/probe/whoami", headers=SERVE_HEADERS)
        api = await browser.get("/v1/users/alice/provisioning-requests", headers=SERVE_HEADERS)
        me = await browser.get("/me", headers=SERVE_HEADERS)
        assert "<h1" in page.text
        assert "nobody" in page.text
        assert "alice@example.com" not in page.text
        assert api.status_code == 401
        assert me.status_code == 403
        assert "Sign in through Tailscale Serve" in me.text
        assert "alice@example.com" not in me.text


async def test_with_serve_headers_from_the_proxy_they_name_the_person(
    context: AppContext,
) -> None:
    app = app_with_probe(context, [], identity_headers=ON)
    async with browser_from(app, "127.0.0.1") as browser:
        page = await browser.get("/probe/whoami", headers=SERVE_HEADERS)
        assert "Signed in to the tailnet as" in page.text
        assert "alice@example.com" in page.text
    # IPv6 loopback too: both are the proxy's by default.
    async with browser_from(app, "::1") as browser:
        page = await browser.get("/probe/whoami", headers=SERVE_HEADERS)
        assert "alice@example.com" in page.text


async def test_from_an_untrusted_peer_they_are_ignored_and_logged_once(
    context: AppContext, caplog: pytest.LogCaptureFixture
) -> None:
    app = app_with_probe(context, [], identity_headers=ON, identity_proxy_ips=["127.0.0.2"])
    forged = {**SERVE_HEADERS, "X-Forwarded-For": "127.0.0.2"}
    with caplog.at_level(logging.WARNING, logger="tsprov.console"):
        async with browser_from(app, "127.0.0.1") as browser:
            for _ in range(3):
                page = await browser.get("/probe/whoami", headers=forged)
                assert "nobody" in page.text
                assert "alice@example.com" not in page.text
    warnings = [record for record in caplog.records if record.name == "tsprov.console"]
    assert len(warnings) == 1
    assert "127.0.0.1" in warnings[0].getMessage()
    assert "alice" not in warnings[0].getMessage().lower()


async def test_from_the_listed_proxy_only_that_peer_is_trusted(context: AppContext) -> None:
    app = app_with_probe(context, [], identity_headers=ON, identity_proxy_ips=["10.0.0.7"])
    async with browser_from(app, "10.0.0.7") as proxy:
        assert "alice@example.com" in (await proxy.get("/probe/whoami", headers=SERVE_HEADERS)).text
    async with browser_from(app, "10.0.0.8") as other:
        assert "nobody" in (await other.get("/probe/whoami", headers=SERVE_HEADERS)).text


async def test_a_malformed_login_names_nobody(context: AppContext) -> None:
    app = app_with_probe(context, [], identity_headers=ON)
    async with browser_from(app, "127.0.0.1") as browser:
        for login in ("", "alice smith@example.com", "a" * 400):
            headers = {**SERVE_HEADERS, "Tailscale-User-Login": login}
            assert "nobody" in (await browser.get("/probe/whoami", headers=headers)).text


async def test_the_tcp_peer_decides_never_x_forwarded_for(context: AppContext) -> None:
    app = app_with_probe(context, [], identity_headers=ON)
    # Serve connects from loopback and names the tailnet client in X-Forwarded-For.
    behind_serve = {**SERVE_HEADERS, "X-Forwarded-For": "100.64.0.7"}
    async with browser_from(app, "127.0.0.1") as proxy:
        page = await proxy.get("/probe/whoami", headers=behind_serve)
        assert "alice@example.com" in page.text
    claiming_loopback = {**SERVE_HEADERS, "X-Forwarded-For": "127.0.0.1"}
    async with browser_from(app, "10.0.0.8") as remote:
        page = await remote.get("/probe/whoami", headers=claiming_loopback)
        assert "nobody" in page.text


async def test_a_login_given_twice_or_through_funnel_names_nobody(context: AppContext) -> None:
    """Two logins mean someone added one beside the proxy's; Funnel traffic comes from the
    internet through the same local proxy and is nobody's."""
    app = app_with_probe(context, [], identity_headers=ON)
    twice = [*SERVE_HEADERS.items(), ("Tailscale-User-Login", "olga@ops.example.com")]
    funnel = {**SERVE_HEADERS, "Tailscale-Funnel-Request": "?1"}
    async with browser_from(app, "127.0.0.1") as browser:
        for headers in (twice, funnel):
            page = await browser.get("/probe/whoami", headers=headers)
            assert "nobody" in page.text
            assert "@" not in page.text.split("<h1", 1)[1].split("</h1>", 1)[0]


async def test_a_name_cannot_carry_line_or_paragraph_separators(context: AppContext) -> None:
    app = app_with_probe(context, [], identity_headers=ON)
    named = {**SERVE_HEADERS, "Tailscale-User-Name": "=?utf-8?q?Alice=E2=80=A8Admin=E2=80=A9?="}
    async with browser_from(app, "127.0.0.1") as browser:
        page = await browser.get("/probe/whoami", headers=named)
    assert "AliceAdmin" in page.text
    assert "\u2028" not in page.text
    assert "\u2029" not in page.text
