"""security.md items 39-41 at the callback: the consent window, unknown identities, drops."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.consent.drops import UNKNOWN_LOGIN
from tests.helpers.browser import Browser
from tests.helpers.security_flows import code_exchanges
from tests.helpers.steps import create_request, fetch_request, new_user
from tests.security.conftest import CREDENTIALS, IDENTITY_FIELD
from tests.security.test_consent_pages import audit_events, expect_login

ALICE = "alice@example.com"
ADMIN = {"Authorization": f"Bearer {CREDENTIALS.admin_token}"}


async def sandbox_keys(sandbox: httpx.AsyncClient) -> list[dict[str, Any]]:
    """Every auth key the sandbox's tailnet holds, as its admin sees them."""
    listed = await sandbox.get("/api/v2/tailnet/-/keys", params={"all": "true"}, headers=ADMIN)
    assert listed.status_code == 200, listed.text
    keys: list[dict[str, Any]] = listed.json()["keys"]
    return keys


async def test_item_39_a_callback_after_the_consent_window_is_refused_before_the_exchange(
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    caller_key: str,
    stack_sessions: async_sessionmaker[AsyncSession],
) -> None:
    request = await create_request(api, caller_key, new_user())
    callback = await browser.decide(await browser.open_consent(request["consent_url"]), ALICE)
    # The flow is minutes old, well inside its own 10 minutes; the link's window has closed.
    async with stack_sessions() as session, session.begin():
        await session.execute(
            text(
                "UPDATE provisioning_request SET consent_expires_at = now() - interval '1 second'"
                " WHERE id = :id"
            ),
            {"id": uuid.UUID(request["id"])},
        )
    page = await browser.get(callback)
    assert page.status_code == 410
    assert "expired" in page.text
    assert await code_exchanges(sandbox) == []
    assert (await fetch_request(api, caller_key, request["id"]))["grant"] is None


async def test_item_40_an_unknown_consenting_identity_is_audited_as_unknown(
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    caller_key: str,
    admin_key: str,
) -> None:
    # Nothing names who consented: the token carries no login (the sandbox's identity_field
    # is off), the key no owner, and the configuration log no actor for its creation.
    switched = await sandbox.patch(
        "/sandbox/switches", json={"consent_key_user_id": "empty", "consent_key_log": "absent"}
    )
    assert switched.status_code == 200
    user = new_user()
    await expect_login(api, admin_key, user, "bob@example.com")
    request = await create_request(api, caller_key, user)
    assert (await browser.consent(request["consent_url"], "alice@example.com")).status_code == 303

    events = await audit_events(api, caller_key, user)
    consent_events = [event for event in events if event["origin"] == "IDENTITY_PROVIDER"]
    assert consent_events
    logins = {event["actor"]["loginName"] for event in consent_events}
    assert logins == {UNKNOWN_LOGIN}


async def test_item_41_a_mismatched_consent_s_key_is_revoked_upstream_and_the_drop_audited(
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    caller_key: str,
    admin_key: str,
) -> None:
    switched = await sandbox.patch("/sandbox/switches", json={"identity_field": IDENTITY_FIELD})
    assert switched.status_code == 200
    user = new_user()
    await expect_login(api, admin_key, user, "bob@example.com")
    request = await create_request(api, caller_key, user)

    page = await browser.consent(request["consent_url"], "alice@example.com")
    assert page.status_code == 403
    # The one-time key the consent issued is no longer live (listings show live keys only),
    # and the code was presented a second time to ask for that.
    assert await sandbox_keys(sandbox) == []
    assert len(await code_exchanges(sandbox)) == 2

    drops = [
        event
        for event in await audit_events(api, caller_key, user)
        if event["action"] == "REVOKE" and event["target"]["type"] == "GRANT"
    ]
    assert len(drops) == 1
    assert "dropped the one-time key" in drops[0]["actionDetails"]
    assert "mismatch" in drops[0]["actionDetails"]
    assert drops[0]["error"] == ""
