"""security.md items 1-7: the consent flow's state, PKCE, issuer and denial, over real HTTP."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import uuid
from datetime import timedelta

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.audit.events import caller_actor
from service.consent.flow import start_flow
from service.crypto.keyring import KeyRing
from service.crypto.sealed import verifier_context
from service.models import ConsentFlow
from service.provisioning.create import create_provisioning_request
from service.provisioning.schemas import ProvisioningRequestCreate
from service.settings import Settings
from tests.conftest import bearer
from tests.helpers.browser import Browser, query_of
from tests.helpers.security_flows import code_exchanges, with_query
from tests.helpers.steps import create_request, fetch_request, new_user
from tests.security.conftest import Stack

ALICE = "alice@example.com"
UNRESERVED = re.compile(r"[A-Za-z0-9._~-]+")


async def callback_for(api: httpx.AsyncClient, browser: Browser, key: str) -> tuple[str, str]:
    """A fresh request approved on the consent screen: its id and the callback URL, unvisited."""
    request = await create_request(api, key, new_user())
    callback = await browser.decide(await browser.open_consent(request["consent_url"]), ALICE)
    return request["id"], callback


async def assert_nothing_stored(api: httpx.AsyncClient, key: str, request_id: str) -> None:
    request = await fetch_request(api, key, request_id)
    assert request["status"] == "awaiting_consent"
    assert request["grant"] is None
    user = await api.get(f"/v1/users/{request['user_id']}", headers=bearer(key))
    assert user.json()["grants"] == []


async def test_item_01_foreign_state_is_refused_without_exchange(
    stack: Stack,
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    caller_key: str,
) -> None:
    request_id, callback = await callback_for(api, browser, caller_key)
    async with Browser(stack.sandbox_url) as attacker:
        no_cookie = await attacker.get(callback)
        # The attacker's own, genuine flow cookie: valid, but not the one this state was issued to.
        await attacker.open_consent(
            (await create_request(api, caller_key, new_user()))["consent_url"]
        )
        other_cookie = await attacker.get(callback)

    assert (no_cookie.status_code, other_cookie.status_code) == (400, 400)
    assert await code_exchanges(sandbox) == []
    await assert_nothing_stored(api, caller_key, request_id)
    # The refusals spent nothing: the browser the flow belongs to still completes it.
    assert (await browser.get(callback)).status_code == 303


async def test_item_02_a_replayed_callback_is_refused_without_a_second_exchange(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, browser: Browser, caller_key: str
) -> None:
    _, callback = await callback_for(api, browser, caller_key)
    assert (await browser.get(callback)).status_code == 303
    assert len(await code_exchanges(sandbox)) == 1
    replay = await browser.get(callback)
    assert replay.status_code == 400
    assert len(await code_exchanges(sandbox)) == 1


async def test_item_02_parallel_identical_callbacks_make_exactly_one_exchange(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, browser: Browser, caller_key: str
) -> None:
    request_id, callback = await callback_for(api, browser, caller_key)
    answers = await asyncio.gather(*(browser.get(callback) for _ in range(6)))
    assert sorted(answer.status_code for answer in answers) == [303, 400, 400, 400, 400, 400]
    assert len(await code_exchanges(sandbox)) == 1
    assert (await fetch_request(api, caller_key, request_id))["status"] == "ready"


async def age_flows(
    sessions: async_sessionmaker[AsyncSession], request_id: str, by: timedelta
) -> None:
    async with sessions() as session, session.begin():
        await session.execute(
            update(ConsentFlow)
            .where(ConsentFlow.request_id == uuid.UUID(request_id))
            .values(created_at=ConsentFlow.created_at - by, expires_at=ConsentFlow.expires_at - by)
        )


async def test_item_03_a_flow_older_than_ten_minutes_is_refused(
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    caller_key: str,
    stack_sessions: async_sessionmaker[AsyncSession],
) -> None:
    young_id, young = await callback_for(api, browser, caller_key)
    old_id, old = await callback_for(api, browser, caller_key)
    await age_flows(stack_sessions, young_id, timedelta(minutes=9, seconds=30))
    await age_flows(stack_sessions, old_id, timedelta(minutes=10, seconds=1))

    assert (await browser.get(old)).status_code == 400
    assert await code_exchanges(sandbox) == []
    await assert_nothing_stored(api, caller_key, old_id)
    assert (await browser.get(young)).status_code == 303


def random_bytes_behind(value: str) -> int:
    """How many bytes a base64url string (43 chars = 32 bytes) can carry."""
    return len(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))


async def test_item_04_the_authorize_redirect_carries_an_s256_challenge_of_the_kept_verifier(
    api: httpx.AsyncClient,
    browser: Browser,
    caller_key: str,
    stack_sessions: async_sessionmaker[AsyncSession],
    key_ring: KeyRing,
) -> None:
    request = await create_request(api, caller_key, new_user())
    sent = query_of(await browser.open_consent(request["consent_url"]))
    assert sent["code_challenge_method"] == "S256"
    state_hash = hashlib.sha256(sent["state"].encode()).digest()
    async with stack_sessions() as session:
        flow = await session.scalar(select(ConsentFlow).where(ConsentFlow.state_hash == state_hash))
    assert flow is not None
    assert flow.verifier_ciphertext is not None
    verifier = key_ring.decrypt_text(
        flow.verifier_ciphertext, verifier_context(flow.id, flow.request_id)
    )

    assert 43 <= len(verifier) <= 128
    assert UNRESERVED.fullmatch(verifier)
    assert random_bytes_behind(verifier) >= 32
    digest = hashlib.sha256(verifier.encode()).digest()
    assert sent["code_challenge"] == base64.urlsafe_b64encode(digest).decode().rstrip("=")
    assert random_bytes_behind(sent["state"]) >= 32
    assert abs(flow.expires_at - flow.created_at - timedelta(minutes=10)) < timedelta(seconds=5)


async def test_item_04_state_and_verifier_are_unique_over_10000_flows(
    session: AsyncSession, settings: Settings, key_ring: KeyRing
) -> None:
    actor = caller_actor(uuid.uuid4(), "sec-uniqueness")
    request = await create_provisioning_request(
        session, settings, key_ring, actor, new_user(), ProvisioningRequestCreate()
    )
    states, challenges = set(), set()
    for _ in range(10_000):
        flow = await start_flow(session, key_ring, request, None)
        states.add(flow.state)
        challenges.add(flow.code_challenge)
    flows = await session.scalars(select(ConsentFlow).where(ConsentFlow.request_id == request.id))
    verifiers = {
        key_ring.decrypt_text(row.verifier_ciphertext or b"", verifier_context(row.id, request.id))
        for row in flows
    }
    assert len(states) == len(challenges) == len(verifiers) == 10_000


async def test_item_05_the_exchange_uses_the_kept_verifier_and_the_configured_redirect_uri(
    stack: Stack,
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    caller_key: str,
) -> None:
    # With require_pkce the sandbox refuses a wrong verifier, and it always refuses a
    # redirect_uri that differs from the authorization's: success proves both were right.
    await sandbox.patch("/sandbox/switches", json={"require_pkce": True})
    request = await create_request(api, caller_key, new_user())
    hostile = {"redirect_uri": "https://evil.example/callback", "code_verifier": "a" * 64}
    authorize = await browser.open_consent(with_query(request["consent_url"], **hostile))
    assert query_of(authorize)["redirect_uri"] == stack.settings.redirect_uri
    callback = await browser.decide(authorize, ALICE)

    answer = await browser.get(with_query(callback, **hostile))
    assert answer.status_code == 303, answer.text
    exchanges = await code_exchanges(sandbox)
    assert [exchange["status"] for exchange in exchanges] == [200]
    assert (await fetch_request(api, caller_key, request["id"]))["status"] == "ready"


def one_character_off(issuer: str) -> list[str]:
    last = issuer[-1]
    return [
        issuer + "/",
        issuer[:-1] + ("0" if last != "0" else "1"),
        issuer.replace("http://", "https://", 1),
        issuer.upper(),
        issuer + " ",
        "",
    ]


async def test_item_06_an_iss_differing_by_any_character_is_refused_before_the_exchange(
    stack: Stack,
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    caller_key: str,
) -> None:
    await sandbox.patch("/sandbox/switches", json={"send_iss": True})
    for forged in one_character_off(stack.sandbox_url):
        request_id, callback = await callback_for(api, browser, caller_key)
        assert query_of(callback)["iss"] == stack.sandbox_url
        refused = await browser.get(with_query(callback, iss=forged))
        assert refused.status_code == 400, forged
        await assert_nothing_stored(api, caller_key, request_id)
    assert await code_exchanges(sandbox) == []
    # The issuer exactly as configured is accepted.
    _, genuine = await callback_for(api, browser, caller_key)
    assert (await browser.get(genuine)).status_code == 303


async def test_item_07_access_denied_spends_the_state_stores_nothing_and_is_audited(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, browser: Browser, caller_key: str
) -> None:
    request = await create_request(api, caller_key, new_user())
    consent_screen = await browser.open_consent(request["consent_url"])
    callback = await browser.decide(consent_screen, ALICE, "deny")
    assert query_of(callback)["error"] == "access_denied"
    page = await browser.get(callback)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "declined" in page.text
    assert not re.search(r"<(script|form|iframe|img|link)\b", page.text, re.IGNORECASE)

    assert (await browser.get(callback)).status_code == 400
    assert await code_exchanges(sandbox) == []
    await assert_nothing_stored(api, caller_key, request["id"])
    trail = await api.get(
        "/v1/audit",
        params={
            "start": "2000-01-01T00:00:00Z",
            "end": "2100-01-01T00:00:00Z",
            "user_id": request["user_id"],
            "event": "GRANT.CREATE",
        },
        headers=bearer(caller_key),
    )
    assert [event["error"] for event in trail.json()["logs"]] == ["access_denied"]
