"""Property checks of the rules the sandbox enforces: redirect URIs, scopes, the consent form."""

import asyncio
import ipaddress

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.app import create_app
from sandbox.oauth_apps.rules import check_redirect_uri
from sandbox.routes.authorize import PARAMETER_NAMES
from sandbox.scopes import scope_grants
from sandbox.settings import SandboxSettings
from tests.helpers.sandbox_flows import (
    APP_ID,
    AUTHORIZE,
    REDIRECT_URI,
    SANDBOX_URL,
    authorize_params,
    hidden_fields,
)

labels = st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True)
hostnames = st.lists(labels, min_size=2, max_size=4).map(".".join)
paths = st.from_regex(r"(/[A-Za-z0-9._~-]{0,12}){0,3}", fullmatch=True)
scope_parts = st.sampled_from(["auth_keys", "devices", "core", "create", "once", "logs", "read"])
scopes = st.lists(scope_parts, min_size=1, max_size=4).map(":".join)


@given(host=hostnames, path=paths)
def test_https_names_are_accepted(host: str, path: str) -> None:
    uri = f"https://{host}{path}"
    assert check_redirect_uri(uri) == uri


@given(host=hostnames, path=paths)
def test_plain_http_is_refused_off_loopback(host: str, path: str) -> None:
    with pytest.raises(ValueError, match="is not permitted"):
        check_redirect_uri(f"http://{host}{path}")


@given(scheme=st.from_regex(r"[a-z][a-z0-9+.-]{0,10}", fullmatch=True), path=paths)
def test_loopback_takes_any_scheme(scheme: str, path: str) -> None:
    for host in ("localhost", "127.0.0.1", "[::1]"):
        uri = f"{scheme}://{host}{path}"
        assert check_redirect_uri(uri) == uri


@given(address=st.ip_addresses(), path=paths)
def test_raw_ip_hosts_are_refused_except_loopback(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, path: str
) -> None:
    host = f"[{address}]" if address.version == 6 else str(address)
    uri = f"https://{host}{path}"
    if str(address) in ("127.0.0.1", "::1"):
        assert check_redirect_uri(uri) == uri
    else:
        with pytest.raises(ValueError, match="is not permitted"):
            check_redirect_uri(uri)


@given(held=scopes, wanted=scopes)
def test_a_scope_grants_only_itself_and_narrower_scopes(held: str, wanted: str) -> None:
    expected = wanted == held or wanted.startswith(held + ":")
    assert scope_grants(held, wanted) is expected
    assert scope_grants("all", wanted)


@given(wanted=scopes)
def test_read_only_all_grants_only_reads(wanted: str) -> None:
    assert scope_grants("all:read", wanted) is wanted.endswith(":read")


async def _submit_altered(name: str, value: str) -> httpx.Response | None:
    app = create_app(
        SandboxSettings(
            app_client_id=APP_ID,
            app_redirect_uris=[REDIRECT_URI],
            users=["bob@example.com"],
            require_pkce=False,
            auto_approve="",
        )
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=SANDBOX_URL) as client:
        page = await client.get(AUTHORIZE, params=authorize_params())
        form = {**hidden_fields(page.text), "login": "bob@example.com", "decision": "approve"}
        if form.get(name) == value:
            return None
        form[name] = value
        return await client.post(AUTHORIZE, data=form)


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(PARAMETER_NAMES),
    value=st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"])),
)
def test_any_altered_consent_field_is_refused(name: str, value: str) -> None:
    response = asyncio.run(_submit_altered(name, value))
    if response is None:
        return
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "altered" in response.text
