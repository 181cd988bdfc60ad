"""/console in-process: who may enter, what each page shows, and every action audited with
the operator's tailnet login."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from html import unescape

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.audit.events import ORIGIN_CONSOLE
from service.audit.query import AuditFilter, query_audit
from service.callers.store import create_caller
from service.settings import IdentityHeaders
from service.state import AppContext
from tests.conftest import CallerFactory, bearer
from tests.security.console_app import SERVE_HEADERS, app_with_probe, browser_from

OPERATOR = {**SERVE_HEADERS, "Tailscale-User-Login": "olga@ops.example.com",
            "Tailscale-User-Name": "Olga Ops"}  # fmt: skip
ALICE = SERVE_HEADERS
PAGES = ("/console", "/console/users", "/console/callers", "/console/audit", "/console/health")


@pytest.fixture
async def browser(context: AppContext) -> AsyncIterator[httpx.AsyncClient]:
    app = app_with_probe(
        context,
        [],
        identity_headers=IdentityHeaders.TAILSCALE_SERVE,
        console_admins=["*@ops.example.com"],
    )
    async with browser_from(app, "127.0.0.1") as client:
        yield client


def form_token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]*)"', page)
    assert found is not None, page
    return unescape(found.group(1))


async def test_every_page_opens_for_an_operator_and_is_403_for_anyone_else(
    browser: httpx.AsyncClient,
) -> None:
    for path in PAGES:
        page = await browser.get(path, headers=OPERATOR)
        assert page.status_code == 200, (path, page.text)
        assert "olga@ops.example.com" in page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]
        refused = await browser.get(path, headers=ALICE)
        assert refused.status_code == 403
        assert "Operators only" in refused.text
        nobody = await browser.get(path)
        assert nobody.status_code == 403
        assert "Sign in through Tailscale Serve" in nobody.text


async def test_bad_filters_get_a_plain_page_not_a_500(browser: httpx.AsyncClient) -> None:
    for query in (
        "status=sleeping",
        "from=yesterday",
        "cursor=%%%",
        "until=9999-12-31T23:59+-01:00",
    ):
        answer = await browser.get(f"/console?{query}", headers=OPERATOR)
        assert answer.status_code in (400, 422), (query, answer.status_code)
        assert answer.headers["content-type"].startswith("text/html")
    audit = await browser.get("/console/audit?start=2026-12-02T00:00&end=2026-12-01T00:00",
                              headers=OPERATOR)  # fmt: skip
    assert audit.status_code in (400, 422)
    # An end with no day before it: the window starts at the earliest time, and is empty.
    earliest = await browser.get("/console/audit?end=0001-01-01T00:00", headers=OPERATOR)
    assert earliest.status_code == 200
    assert "No event in this window matches" in earliest.text
    odd_user = await browser.get("/console/users/not%20a%20user", headers=OPERATOR)
    assert odd_user.status_code in (400, 422)
    assert odd_user.headers["content-type"].startswith("text/html")
    missing = await browser.get(
        "/console/requests/00000000-0000-4000-8000-000000000000", headers=OPERATOR
    )
    assert missing.status_code == 404


async def test_cancelling_a_request_asks_then_acts_audited_as_the_operator(
    browser: httpx.AsyncClient,
    client: httpx.AsyncClient,
    make_caller: CallerFactory,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    key = await make_caller("provision", "read")
    made = await client.post("/v1/users/alice/provisioning-requests", headers=bearer(key), json={})
    request_id = made.json()["id"]
    timeline = await browser.get(f"/console/requests/{request_id}", headers=OPERATOR)
    assert "PROVISIONING_REQUEST.CREATE" in timeline.text
    token = form_token(timeline.text)
    path = f"/console/requests/{request_id}/cancel"
    asked = await browser.post(path, headers=OPERATOR, data={"csrf_token": token})
    assert "Cancel this request?" in asked.text
    read = await client.get(f"/v1/provisioning-requests/{request_id}", headers=bearer(key))
    assert read.json()["status"] == "awaiting_consent"  # asking changed nothing
    done = await browser.post(
        path, headers=OPERATOR, data={"csrf_token": token, "confirmed": "yes"}
    )
    assert done.status_code == 200
    read = await client.get(f"/v1/provisioning-requests/{request_id}", headers=bearer(key))
    assert read.json()["status"] == "cancelled"
    events = await console_events(sessions)
    assert ("PROVISIONING_REQUEST.UPDATE", "olga@ops.example.com") in events


async def console_events(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, str]]:
    """(event, actor login) of every event with the console as its origin."""
    now = datetime.now(UTC)
    async with sessions() as session:
        page = await query_audit(session, AuditFilter(now - timedelta(hours=1), now), limit=500)
    return [
        (log["eventName"], log["actor"]["loginName"])
        for log in page.logs
        if log["origin"] == ORIGIN_CONSOLE and log["actor"]["type"] == "USER"
    ]


async def test_revoking_a_caller_and_offboarding_a_user_are_audited_as_the_operator(
    browser: httpx.AsyncClient,
    client: httpx.AsyncClient,
    make_caller: CallerFactory,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        _, doomed = await create_caller(session, "doomed", ["read"], [])
    key = await make_caller("provision")
    await client.post("/v1/users/bob/provisioning-requests", headers=bearer(key), json={})
    page = await browser.get("/console/callers", headers=OPERATOR)
    token = form_token(page.text)
    confirmed = {"csrf_token": token, "confirmed": "yes"}
    revoked = await browser.post("/console/callers/doomed/revoke", headers=OPERATOR, data=confirmed)
    assert revoked.status_code == 200
    assert (await client.get("/v1/users/bob", headers=bearer(doomed))).status_code == 401
    offboarded = await browser.post("/console/users/bob/offboard", headers=OPERATOR, data=confirmed)
    assert offboarded.status_code == 200
    assert "Requests cancelled" in offboarded.text
    events = await console_events(sessions)
    assert ("API_KEY.REVOKE", "olga@ops.example.com") in events
    assert ("PROVISIONING_REQUEST.UPDATE", "olga@ops.example.com") in events


async def test_a_non_admin_cannot_act_even_with_a_valid_token(
    browser: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions() as session, session.begin():
        await create_caller(session, "kept", ["read"], [])
    me = await browser.get("/console/callers", headers=OPERATOR)
    token = form_token(me.text)
    answer = await browser.post(
        "/console/callers/kept/revoke",
        headers=ALICE,
        data={"csrf_token": token, "confirmed": "yes"},
    )
    assert answer.status_code == 403
    listed = await browser.get("/console/callers", headers=OPERATOR)
    assert "Revoke kept" in listed.text  # still live


async def test_an_operators_headers_from_an_untrusted_peer_open_nothing(
    context: AppContext,
) -> None:
    app = app_with_probe(
        context,
        [],
        identity_headers=IdentityHeaders.TAILSCALE_SERVE,
        console_admins=["*@ops.example.com"],
    )
    async with browser_from(app, "100.64.0.7") as spoofer:  # a tailnet peer, not the proxy
        for path in PAGES:
            answer = await spoofer.get(path, headers=OPERATOR)
            assert answer.status_code == 403, path
            assert "Sign in through Tailscale Serve" in answer.text
            assert "olga@ops.example.com" not in answer.text


async def test_verify_runs_only_from_the_pages_button(browser: httpx.AsyncClient) -> None:
    """A walk costs a second of the database: a link on another site, opened by an operator
    signed in through Serve, must not start one."""
    assert (await browser.get("/console/audit/verify", headers=OPERATOR)).status_code == 405
    forged = await browser.post("/console/audit/verify", headers=OPERATOR, data={})
    assert forged.status_code == 403
    assert "Action not accepted" in forged.text

    audit = await browser.get("/console/audit", headers=OPERATOR)
    walked = await browser.post(
        "/console/audit/verify", headers=OPERATOR, data={"csrf_token": form_token(audit.text)}
    )

    assert walked.status_code == 200, walked.text
    assert "The audit chain holds" in walked.text
