"""security.md items 19-22: caller keys, the one 401, scopes and user limits, strict input."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import sys

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from service.callers.store import authenticate_caller, generate_caller_key, revoke_caller
from service.models import Caller
from service.ops import cli
from tests.conftest import CallerFactory, bearer
from tests.helpers.browser import Browser, confirm_consent, query_of
from tests.helpers.security_flows import upstream_calls
from tests.helpers.steps import claim_and_join, create_request, new_user
from tests.security.conftest import CallerMaker, Stack, StackFactory
from tests.security.logcapture import ProductionLogs

KEY_SHAPE = r"tsprov_[A-Za-z0-9_-]{43}"


def test_item_19_caller_keys_carry_256_random_bits_behind_a_recognisable_prefix() -> None:
    keys = {generate_caller_key() for _ in range(2_000)}
    assert len(keys) == 2_000
    for key in keys:
        assert key.startswith("tsprov_")
        secret = key.removeprefix("tsprov_")
        assert len(base64.urlsafe_b64decode(secret + "=")) == 32


async def test_item_19_a_key_is_stored_only_as_its_hash_and_compared_in_constant_time(
    make_caller: CallerFactory, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = await make_caller("read", name="sec-hash-only")
    caller = await session.scalar(select(Caller).where(Caller.name == "sec-hash-only"))
    assert caller is not None
    assert caller.key_hash == hashlib.sha256(key.encode()).digest()
    row = await session.execute(text("SELECT c::text FROM caller c WHERE name = 'sec-hash-only'"))
    assert key.removeprefix("tsprov_") not in row.scalar_one()

    compared: list[tuple[bytes, bytes]] = []
    real_compare = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real_compare(a, b)

    monkeypatch.setattr("hmac.compare_digest", spy)
    assert await authenticate_caller(session, key) is not None
    assert compared == [(caller.key_hash, hashlib.sha256(key.encode()).digest())]


async def test_item_19_the_cli_shows_a_new_key_once_and_never_again(
    stack: Stack,
    api: httpx.AsyncClient,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TSPROV_DATABASE_URL", stack.database_url)
    name = f"sec-cli-{new_user()}"
    created = await asyncio.to_thread(cli.main, ["callers", "create", name, "--scope", "read"])
    shown = capsys.readouterr().out.splitlines()
    assert created == 0
    key = shown[-1]
    assert key.startswith("tsprov_")
    assert len(key) == 50
    assert (await api.get(f"/v1/users/{new_user()}", headers=bearer(key))).status_code == 404

    listed = await asyncio.to_thread(cli.main, ["callers", "list"])
    output = capsys.readouterr()
    assert listed == 0
    assert name in output.out
    assert key.removeprefix("tsprov_") not in output.out + output.err


async def test_item_20_every_bad_key_gets_one_identical_401(
    client: httpx.AsyncClient, make_caller: CallerFactory, session: AsyncSession
) -> None:
    revoked = await make_caller("read", name="sec-revoked")
    await revoke_caller(session, "sec-revoked")
    valid = await make_caller("read")
    attempts = {
        "missing": {},
        "empty bearer": {"Authorization": "Bearer "},
        "other scheme": {"Authorization": f"Basic {valid}"},
        "malformed": {"Authorization": "Bearer tsprov_short"},
        "truncated": {"Authorization": f"Bearer {valid[:-1]}"},
        "unknown": bearer(generate_caller_key()),
        "revoked": bearer(revoked),
    }
    answers = {name: await client.get("/v1/users/alice", headers=h) for name, h in attempts.items()}
    for name, answer in answers.items():
        assert answer.status_code == 401, name
        assert answer.headers["www-authenticate"].startswith("Bearer"), name
        assert answer.headers["content-type"] == "application/problem+json"
    assert len({answer.content for answer in answers.values()}) == 1
    assert answers["missing"].json()["code"] == "unauthorized"
    # The same path with the valid key is past authentication.
    assert (await client.get("/v1/users/alice", headers=bearer(valid))).status_code == 404


async def test_item_21_a_caller_without_the_scope_is_refused(
    client: httpx.AsyncClient, make_caller: CallerFactory
) -> None:
    reader, auditor = await make_caller("read"), await make_caller("audit")
    create = await client.post(
        "/v1/users/alice/provisioning-requests", headers=bearer(reader), json={}
    )
    read = await client.get("/v1/users/alice", headers=bearer(auditor))
    for answer in (create, read):
        assert answer.status_code == 403
        assert answer.json()["code"] == "forbidden"


async def test_item_21_a_caller_limited_to_some_users_is_refused_others_before_any_upstream_call(
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    browser: Browser,
    caller_key: str,
    make_stack_caller: CallerMaker,
) -> None:
    # The outsider holds a reusable grant (a claim would mint upstream) and a joined device
    # (a delete would reach Tailscale): every refusal below has an upstream call to prevent.
    await sandbox.patch("/sandbox/switches", json={"grant_mode": "reusable"})
    outsider = f"{new_user()}@ops.example.com"
    first = await create_request(api, caller_key, outsider, hostname="sec-outsider")
    assert (await browser.consent(first["consent_url"], "alice@example.com")).status_code == 303
    node_id = (await claim_and_join(api, sandbox, caller_key, first["id"], "sec-outsider"))[
        "nodeId"
    ]
    joined = await api.get(
        f"/v1/provisioning-requests/{first['id']}",
        params={"wait_seconds": 15},
        headers=bearer(caller_key),
    )
    assert joined.json()["status"] == "joined"
    second = await create_request(api, caller_key, outsider)
    assert second["status"] == "ready"

    limited = bearer(await make_stack_caller("provision", "read", users=["*@eng.example.com"]))
    limited_admin = bearer(await make_stack_caller("admin", users=["*@eng.example.com"]))
    await sandbox.delete("/sandbox/requests")
    refusals = [
        await api.post(f"/v1/provisioning-requests/{second['id']}/claim", headers=limited),
        await api.get(f"/v1/provisioning-requests/{second['id']}", headers=limited),
        await api.get(f"/v1/users/{outsider}/devices", headers=limited),
        await api.post(f"/v1/users/{outsider}/provisioning-requests", headers=limited, json={}),
        await api.delete(f"/v1/users/{outsider}/devices/{node_id}", headers=limited_admin),
        await api.delete(
            f"/v1/users/{outsider}/grants", params={"delete_devices": "true"}, headers=limited_admin
        ),
    ]
    assert [answer.status_code for answer in refusals] == [403] * len(refusals)
    assert {answer.json()["code"] for answer in refusals} == {"forbidden"}
    # The background jobs list devices and read Tailscale's log with the observer's own
    # token; anything else would have been caused by a refusal.
    observer = ("devices", "logging", "client_credentials")
    acted = [
        call
        for call in await upstream_calls(sandbox)
        if call["route"] not in observer and call["grant_type"] not in observer
    ]
    assert acted == []
    allowed = await api.post(
        f"/v1/provisioning-requests/{second['id']}/claim", headers=bearer(caller_key)
    )
    assert allowed.status_code == 200


async def test_item_21_admin_actions_need_the_admin_scope(
    client: httpx.AsyncClient, make_caller: CallerFactory
) -> None:
    everyone_but_admin = bearer(await make_caller("provision", "read", "audit"))
    admin = bearer(await make_caller("admin"))
    attempts = [
        ("PUT", "/v1/users/alice", {"display_name": "Alice"}),
        ("DELETE", "/v1/users/alice/grants", None),
        ("DELETE", "/v1/users/alice/devices/nNode1CNTRL", None),
        ("GET", "/v1/audit/verify", None),
    ]
    for method, path, body in attempts:
        refused = await client.request(method, path, headers=everyone_but_admin, json=body)
        assert refused.status_code == 403, path
        assert refused.json()["code"] == "forbidden"
    put = await client.put("/v1/users/alice", headers=admin, json={"display_name": "Alice"})
    assert put.status_code == 200


SENTINEL = "tsprov_SENTINELxINPUTxSENTINELxINPUTxSENTINELxINP"
BAD_BODIES = {
    "unknown field": {"hostname": "devbox", "colour": SENTINEL},
    "oversize hostname": {"hostname": "h" * 64},
    "oversize description": {"description": "d" * 51},
    "oversize return_to": {"return_to": "/welcome/" + "x" * 600},
    "newline in description": {"description": f"dev box\n{SENTINEL}"},
    "control in hostname": {"hostname": "dev\rbox"},
    "control in return_to": {"return_to": "/welcome\x00"},
}
BAD_USERS = {
    "unknown field": {"display_name": "Alice", "is_admin": True},
    "oversize login": {"tailscale_login": "a" * 321},
    "oversize display name": {"display_name": "A" * 201},
    "tab in login": {"tailscale_login": "alice\t@example.com"},
    "nul in display name": {"display_name": f"Alice\x00{SENTINEL}"},
    "escape in display name": {"display_name": "Alice\x1b[31m"},
}


def window(actor: str) -> dict[str, str]:
    return {"start": "2000-01-01T00:00:00Z", "end": "2100-01-01T00:00:00Z", "actor": actor}


async def test_item_22_unknown_fields_oversize_strings_and_control_characters_are_422(
    client: httpx.AsyncClient, make_caller: CallerFactory
) -> None:
    key = bearer(await make_caller("admin"))
    answers = (
        {
            f"request: {name}": await client.post(
                "/v1/users/alice/provisioning-requests", headers=key, json=body
            )
            for name, body in BAD_BODIES.items()
        }
        | {
            f"user: {name}": await client.put("/v1/users/alice", headers=key, json=body)
            for name, body in BAD_USERS.items()
        }
        | {
            "user id too long": await client.get("/v1/users/" + "u" * 129, headers=key),
            "newline in user id": await client.get("/v1/users/al%0Aice", headers=key),
            "oversize audit filter": await client.get(
                "/v1/audit", headers=key, params=window("a" * 321)
            ),
            "NUL in audit filter": await client.get(
                "/v1/audit", headers=key, params=window("a\x00b")
            ),
            "control in node id": await client.delete("/v1/users/alice/devices/n%1bx", headers=key),
            "oversize Idempotency-Key": await client.post(
                "/v1/users/alice/provisioning-requests",
                headers={**key, "Idempotency-Key": "k" * 256},
                json={},
            ),
        }
    )
    for name, answer in answers.items():
        assert answer.status_code == 422, name
        assert answer.json()["code"] == "validation_failed", name
        # Refused input is never echoed back (it may be a secret pasted in the wrong place).
        assert SENTINEL not in answer.text, name
    valid = await client.post("/v1/users/alice/provisioning-requests", headers=key, json={})
    assert valid.status_code == 201


async def test_item_22_control_characters_in_a_callback_are_refused_before_the_flow_is_spent(
    make_stack_in_process: StackFactory, make_caller: CallerFactory
) -> None:
    stack = await make_stack_in_process()
    request = await create_request(stack.api, await make_caller("provision", "read"), new_user())
    authorize = (await confirm_consent(stack.browser, request["consent_url"])).headers["location"]
    hostile = {"state": query_of(authorize)["state"], "error": "access_denied\x00"}
    refused = await stack.browser.get(stack.api.base_url.join("/callback"), params=hostile)
    assert refused.status_code == 400
    assert refused.headers["content-type"].startswith("text/html")
    # The flow was not spent: the genuine answer still completes it.
    approved = await stack.browser.get(authorize)
    assert (await stack.browser.get(approved.headers["location"])).status_code == 303


def test_item_22_log_lines_stay_one_line_whatever_the_input() -> None:
    forged = "2026-01-01 00:00:00,000 INFO tsprov forged"
    hostile = f"alice\n{forged}\r\n{forged}\u2028{forged}\x85{forged}\x0b\x1b[2Kwiped"
    with ProductionLogs(only_this_thread=True) as logs:
        app_log = logging.getLogger("tsprov.security-test")
        app_log.warning("refused user %s", hostile)
        try:
            raise ValueError(hostile)
        except ValueError:
            app_log.exception("failed for %s", hostile)
        access = logging.getLogger("uvicorn.access")
        access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "GET", f"/x?{hostile}", "1.1", 400)
        logging.getLogger("uvicorn.error").error("odd input: %s", hostile, exc_info=sys.exc_info())
    lines = logs.lines()
    assert len(lines) == 4, lines
    assert not any(line.startswith(forged) for line in lines)
    assert all(line.isprintable() for line in lines)
