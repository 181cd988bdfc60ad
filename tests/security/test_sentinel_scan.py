"""security.md item 17: after full flows, failures included, neither a ``pg_dump`` of the
database nor any line the service logged (as text or as JSON) holds a code, state, verifier,
token, auth key, client secret or caller key."""

from __future__ import annotations

import asyncio
import glob
import hashlib
import json
import logging
import shutil
import uuid
from typing import Literal

import httpx
import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.callers.store import generate_caller_key
from service.crypto.keyring import KeyRing
from service.crypto.sealed import token_context, verifier_context
from service.db import create_engine
from service.models import ConsentFlow, ConsentGrant, ProvisioningRequest
from service.ops.logs import LogFormat
from service.webhooks.status import WebhookEventType
from tests.conftest import bearer
from tests.helpers.browser import Browser, query_of
from tests.helpers.steps import create_request, new_user
from tests.helpers.webhook_receiver import WebhookReceiver
from tests.security.conftest import APP_SECRET, OBSERVER_SECRET, CallerMaker, Stack
from tests.security.logcapture import ProductionLogs

ALICE = "alice@example.com"
Secrets = dict[str, str]


class SentinelRun:
    """Drives the flows, remembering every secret value it sees along the way."""

    def __init__(
        self,
        api: httpx.AsyncClient,
        browser: Browser,
        sessions: async_sessionmaker[AsyncSession],
        key_ring: KeyRing,
        caller_key: str,
    ) -> None:
        self.api, self.browser, self.sessions, self.key_ring = api, browser, sessions, key_ring
        self.key = caller_key
        self.secrets: Secrets = {"caller key": caller_key}

    def remember(self, kind: str, value: str) -> None:
        self.secrets[f"{kind} #{len(self.secrets)}"] = value

    async def consent(self, login: str = ALICE, decision: str = "approve") -> tuple[str, str]:
        """One flow, step by step; returns the request id and the callback URL, visited."""
        request = await create_request(self.api, self.key, new_user())
        self.remember("consent token", request["consent_url"].rsplit("=", 1)[-1])
        authorize = await self.browser.open_consent(request["consent_url"])
        state = query_of(authorize)["state"]
        self.remember("state", state)
        self.remember("flow cookie", self.browser.client.cookies["tsprov_flow"])
        async with self.sessions() as session:
            flow = await session.scalar(
                select(ConsentFlow).where(
                    ConsentFlow.state_hash == hashlib.sha256(state.encode()).digest()
                )
            )
        assert flow is not None
        assert flow.verifier_ciphertext is not None
        context = verifier_context(flow.id, flow.request_id)
        self.remember("verifier", self.key_ring.decrypt_text(flow.verifier_ciphertext, context))
        callback = await self.browser.decide(authorize, login, decision)
        if "code" in query_of(callback):
            self.remember("code", query_of(callback)["code"])
        await self.browser.get(callback)
        return request["id"], callback

    async def grant_of(self, request_id: str) -> ConsentGrant:
        async with self.sessions() as session:
            request = await session.get(ProvisioningRequest, uuid.UUID(request_id))
            assert request is not None
            assert request.grant_id is not None
            grant = await session.get(ConsentGrant, request.grant_id)
        assert grant is not None
        return grant

    async def claim(self, request_id: str, expect: int = 200) -> httpx.Response:
        headers = {**bearer(self.key), "Idempotency-Key": f"claim-{request_id}"}
        answer = await self.api.post(
            f"/v1/provisioning-requests/{request_id}/claim", headers=headers
        )
        assert answer.status_code == expect, answer.text
        if expect == 200:
            self.remember("auth key", answer.json()["auth_key"])
        return answer


async def run_the_flows(run: SentinelRun, stack: Stack, sandbox: httpx.AsyncClient) -> None:
    # A one-time grant: consent, a replayed and a foreign callback, claim and its replay.
    once_id, callback = await run.consent()
    assert (await run.browser.get(callback)).status_code == 400
    async with Browser(stack.sandbox_url) as stranger:
        assert (await stranger.get(callback)).status_code == 400
    await run.claim(once_id)
    await run.claim(once_id)

    # A reusable grant: its access and refresh tokens are sealed; the claim mints a key.
    await sandbox.patch("/sandbox/switches", json={"grant_mode": "reusable"})
    reusable_id, _ = await run.consent()
    grant = await run.grant_of(reusable_id)
    assert grant.token_ciphertext is not None
    assert grant.refresh_ciphertext is not None
    sealed_columns: tuple[tuple[Literal["token", "refresh"], bytes], ...] = (
        ("token", grant.token_ciphertext),
        ("refresh", grant.refresh_ciphertext),
    )
    for column, sealed in sealed_columns:
        run.remember(
            f"{column} token", run.key_ring.decrypt_text(sealed, token_context(grant, column))
        )
    await run.claim(reusable_id)
    await sandbox.patch("/sandbox/switches", json={"grant_mode": "once"})

    # A denial, and a token endpoint that refuses the code.
    await run.consent(decision="deny")
    await sandbox.patch("/sandbox/switches", json={"forced_oauth_error": "invalid_grant"})
    await run.consent()
    await sandbox.patch("/sandbox/switches", json={"forced_oauth_error": None})


async def register_webhooks(run: SentinelRun, admin_key: str, url: str) -> None:
    """An endpoint for every event, its secret rotated: both secrets are sentinels."""
    body = {"url": url, "events": [str(event) for event in WebhookEventType]}
    created = await run.api.post("/v1/webhooks", headers=bearer(admin_key), json=body)
    assert created.status_code == 201, created.text
    run.remember("webhook secret", created.json()["secret"])
    rotate = f"/v1/webhooks/{created.json()['id']}/rotate-secret"
    rotated = await run.api.post(rotate, headers=bearer(admin_key))
    run.remember("rotated webhook secret", rotated.json()["secret"])


async def fail_loudly(run: SentinelRun) -> None:
    """Refusals, and a crash with a traceback, each with a secret close at hand."""
    stranger = generate_caller_key()
    run.remember("unknown caller key", stranger)
    assert (await run.api.get("/v1/users/alice", headers=bearer(stranger))).status_code == 401
    auth_key = next(value for kind, value in run.secrets.items() if kind.startswith("auth key"))
    secret_in_body = {"description": auth_key, "colour": run.key}
    path = f"/v1/users/{new_user()}/provisioning-requests"
    assert (
        await run.api.post(path, headers=bearer(run.key), json=secret_in_body)
    ).status_code == 422

    # A sealed key that no longer opens: the claim fails with a traceback in uvicorn's log.
    broken_id, _ = await run.consent()
    grant = await run.grant_of(broken_id)
    assert grant.token_ciphertext is not None
    run.remember(
        "key of a broken grant",
        run.key_ring.decrypt_text(grant.token_ciphertext, token_context(grant, "token")),
    )
    damaged = grant.token_ciphertext[:-1] + bytes([grant.token_ciphertext[-1] ^ 1])
    async with run.sessions() as session, session.begin():
        await session.execute(
            update(ConsentGrant).where(ConsentGrant.id == grant.id).values(token_ciphertext=damaged)
        )
    await run.claim(broken_id, expect=500)


async def log_an_sql_error(stack: Stack, secret: str) -> None:
    """An SQL error carrying a secret parameter, logged as an unhandled error would be."""
    engine = create_engine(stack.settings)
    try:
        async with engine.connect() as connection:
            await connection.execute(
                text("SELECT length(CAST(:secret AS text)) / 0"), {"secret": secret}
            )
    except DBAPIError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
    finally:
        await engine.dispose()


async def pg_dump(database_url: str) -> str:
    binary = shutil.which("pg_dump") or max(glob.glob("/usr/lib/postgresql/*/bin/pg_dump"))
    process = await asyncio.create_subprocess_exec(
        binary,
        "--no-owner",
        "--dbname",
        database_url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


def saw_the_redacted_callback(lines: list[str], log_format: LogFormat) -> bool:
    """The capture holds the callback's access line, in the shape of its format."""
    if log_format == "text":
        return any('"GET /callback?[redacted] HTTP/1.1" 303' in line for line in lines)
    entries = [json.loads(line) for line in lines]
    return any(entry.get("route") == "/callback" and entry["status"] == 303 for entry in entries)


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_item_17_no_sentinel_reaches_the_database_dump_or_any_log_line(
    log_format: LogFormat,
    stack: Stack,
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    make_stack_caller: CallerMaker,
    stack_sessions: async_sessionmaker[AsyncSession],
    key_ring: KeyRing,
) -> None:
    run = SentinelRun(
        api, browser, stack_sessions, key_ring, await make_stack_caller("provision", "read")
    )
    run.secrets |= {"client secret": APP_SECRET, "observer secret": OBSERVER_SECRET}
    admin = await make_stack_caller("admin")
    # The receiver starts first: starting a server configures uvicorn's loggers afresh.
    with WebhookReceiver() as receiver, ProductionLogs(log_format=log_format) as logs:
        await register_webhooks(run, admin, receiver.url)
        await run_the_flows(run, stack, sandbox)
        await fail_loudly(run)
        await log_an_sql_error(stack, run.key)
        await receiver.wait_for(lambda item: item.json()["type"] == "provisioning_request.claimed")
    dump = await pg_dump(stack.database_url)
    lines = logs.lines()

    # The capture saw what it must scan: query strings, a traceback, an SQL error.
    assert saw_the_redacted_callback(lines, log_format)
    assert any("DecryptionError" in line and "Traceback" in line for line in lines)
    assert any("division by zero" in line for line in lines)
    assert "COPY public.consent_grant" in dump
    leaks = [
        f"{kind} in {place}"
        for kind, value in run.secrets.items()
        for place, haystack in (("pg_dump", dump), ("logs", "\n".join(lines)))
        if value in haystack or value.encode().hex() in haystack
    ]
    assert leaks == []
