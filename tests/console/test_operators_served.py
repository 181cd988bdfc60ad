"""/console on real servers, reached through the tailscale serve stand-in: only operators
enter, filters and pages return what they should, and every action is audited with the
operator's tailnet login."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.conftest import bearer
from tests.helpers.callers import caller_key_at
from tests.helpers.console_flows import confirm_action, consented_request, expect_login
from tests.helpers.serve_standin import ConsoleStack
from tests.helpers.steps import create_request

OPERATOR = "olga@ops.example.com"
PAGES = ("/console", "/console/users", "/console/callers", "/console/audit", "/console/health")
_REQUEST_LINK = re.compile(r'href="/console/requests/([0-9a-f-]{36})"')
_NEXT = re.compile(r'<a rel="next" href="([^"]+)"')


def as_person(stack: ConsoleStack, login: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=stack.as_login(login), timeout=30)


async def audit_of(stack: ConsoleStack, **filters: str) -> list[dict[str, Any]]:
    """The last hour of the trail through the API, as an auditor would read it."""
    key = await stack.new_caller("audit")
    now = datetime.now(UTC)
    window = {
        "start": (now - timedelta(hours=1)).isoformat(),
        "end": (now + timedelta(minutes=1)).isoformat(),
    }
    async with httpx.AsyncClient(base_url=stack.service_url, timeout=30) as api:
        answer = await api.get("/v1/audit", params={**window, **filters, "limit": 500},
                               headers=bearer(key))  # fmt: skip
    assert answer.status_code == 200, answer.text
    logs: list[dict[str, Any]] = answer.json()["logs"]
    return logs


async def named_caller(stack: ConsoleStack, name: str) -> str:
    """A caller with a name the test knows (the console revokes callers by name)."""
    return await caller_key_at(stack.settings.database_url, name, ["read"])


async def test_only_console_admins_enter_and_nobody_without_serve(
    console_stack: ConsoleStack,
) -> None:
    async with (
        as_person(console_stack, OPERATOR) as olga,
        as_person(console_stack, "alice@example.com") as alice,
        httpx.AsyncClient(base_url=console_stack.service_url) as direct,
    ):
        for path in PAGES:
            page = await olga.get(path)
            assert page.status_code == 200, (path, page.text)
            assert OPERATOR in page.text
            refused = await alice.get(path)
            assert refused.status_code == 403, path
            assert "Operators only" in refused.text
            assert "<table" not in refused.text
            nobody = await direct.get(path)
            assert nobody.status_code == 403, path
            assert "Sign in through Tailscale Serve" in nobody.text


async def request_ids(client: httpx.AsyncClient, path: str) -> tuple[list[str], str | None]:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    found = _NEXT.search(page.text)
    return _REQUEST_LINK.findall(page.text), found.group(1).replace("&amp;", "&") if found else None


async def test_filters_and_the_next_page_list_each_matching_request_once(
    console_stack: ConsoleStack,
) -> None:
    key = await console_stack.new_caller("provision", "read")
    user, other = f"many-{uuid.uuid4().hex[:8]}", f"few-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=console_stack.service_url, timeout=30) as api:
        made = [(await create_request(api, key, user))["id"] for _ in range(51)]
        theirs = (await create_request(api, key, other))["id"]
        cancelled = await api.delete(f"/v1/provisioning-requests/{made[0]}", headers=bearer(key))
        assert cancelled.status_code == 204
    async with as_person(console_stack, OPERATOR) as olga:
        first, more = await request_ids(olga, f"/console?user={user}")
        assert len(first) == 50
        assert more is not None
        rest, last = await request_ids(olga, more)
        assert last is None
        assert first + rest == list(reversed(made))  # newest first, each once
        assert theirs not in first + rest
        only, _ = await request_ids(olga, f"/console?user={user}&status=cancelled")
        assert only == [made[0]]
        since = (datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M")
        none, _ = await request_ids(olga, f"/console?user={user}&from={since}")
        assert none == []


async def test_cancel_revoke_and_offboard_are_audited_with_the_operators_login(
    console_stack: ConsoleStack,
) -> None:
    key = await console_stack.new_caller("provision", "read")
    admin = await console_stack.new_caller("admin")
    user, login = f"leaver-{uuid.uuid4().hex[:8]}", "carol@example.com"
    async with httpx.AsyncClient(base_url=console_stack.service_url, timeout=30) as api:
        await expect_login(api, admin, user, login)
        ready = await consented_request(console_stack, api, key, user, login, "leaver-box")
        waiting = await create_request(api, key, user)
    name = f"doomed-{uuid.uuid4().hex[:8]}"
    doomed = await named_caller(console_stack, name)
    async with as_person(console_stack, OPERATOR) as olga:
        timeline = (await olga.get(f"/console/requests/{waiting['id']}")).text
        cancel = f"/console/requests/{waiting['id']}/cancel"
        assert (await confirm_action(olga, timeline, cancel)).status_code == 200
        callers = (await olga.get("/console/callers")).text
        revoked = await confirm_action(olga, callers, f"/console/callers/{name}/revoke")
        assert revoked.status_code == 200
        page = (await olga.get(f"/console/users/{user}")).text
        offboarded = await confirm_action(olga, page, f"/console/users/{user}/offboard")
        assert offboarded.status_code == 200
    async with httpx.AsyncClient(base_url=console_stack.service_url, timeout=30) as api:
        assert (await api.get(f"/v1/users/{user}", headers=bearer(doomed))).status_code in (
            401,
            403,
        )
        seen = await api.get(f"/v1/provisioning-requests/{ready['id']}", headers=bearer(key))
        assert seen.json()["status"] == "cancelled"
    by_operator = [
        (log["eventName"], log["target"]["id"])
        for log in await audit_of(console_stack, actor=OPERATOR)
        if log["origin"] == "ADMIN_CONSOLE" and log["actor"]["type"] == "USER"
    ]
    assert ("PROVISIONING_REQUEST.UPDATE", waiting["id"]) in by_operator
    assert ("PROVISIONING_REQUEST.UPDATE", ready["id"]) in by_operator
    assert any(event == "GRANT.REVOKE" for event, _ in by_operator)
    assert any(event == "API_KEY.REVOKE" for event, _ in by_operator)
