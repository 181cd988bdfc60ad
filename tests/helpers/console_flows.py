"""Steps the console's tests take against ``console_stack``: users who expect a login,
requests consented and devices joined through the API and the sandbox, and a page's action
walked through its confirmation as a person's browser would."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import httpx

from tests.conftest import bearer
from tests.helpers.browser import Browser
from tests.helpers.serve_standin import ConsoleStack
from tests.helpers.stack import SANDBOX_ADMIN
from tests.helpers.steps import claim_and_join, create_request, fetch_request

_FORM = re.compile(
    r'<form method="post" action="([^"]+)"[^>]*>\s*'
    r'<input type="hidden" name="csrf_token" value="([^"]*)">'
)


async def expect_login(api: httpx.AsyncClient, admin_key: str, user: str, login: str) -> None:
    """Tell tsprov that ``user`` must approve as ``login``."""
    answer = await api.put(
        f"/v1/users/{user}", headers=bearer(admin_key), json={"tailscale_login": login}
    )
    assert answer.status_code == 200, answer.text


async def consented_request(
    stack: ConsoleStack, api: httpx.AsyncClient, key: str, user: str, login: str, hostname: str
) -> dict[str, Any]:
    """A request for ``user`` approved at the sandbox as ``login``: ready, its key unclaimed."""
    request = await create_request(api, key, user, hostname=hostname)
    async with Browser(stack.sandbox_url) as browser:
        callback = await browser.consent(request["consent_url"], login=login)
    assert callback.status_code == 303, callback.text
    return await fetch_request(api, key, request["id"])


async def joined_device(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, key: str, request_id: str, hostname: str
) -> dict[str, Any]:
    """Claim a ready request and join with its key; the request once tsprov saw it join."""
    await claim_and_join(api, sandbox, key, request_id, hostname)
    for _ in range(5):
        answer = await api.get(
            f"/v1/provisioning-requests/{request_id}",
            params={"wait_seconds": 10},
            headers=bearer(key),
        )
        if answer.json()["status"] == "joined":
            joined: dict[str, Any] = answer.json()
            return joined
    raise AssertionError(f"request {request_id} never reached joined: {answer.text}")


async def sandbox_keys(sandbox: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    """Every auth key in the sandbox's tailnet, by id, as its admin sees them."""
    listed = await sandbox.get(
        "/api/v2/tailnet/-/keys", params={"all": "true"}, headers=SANDBOX_ADMIN
    )
    assert listed.status_code == 200, listed.text
    return {key["id"]: key for key in listed.json()["keys"]}


def action_token(page: str, action: str) -> str:
    """The CSRF token in the page's form posting to ``action``."""
    for found_action, token in _FORM.findall(page):
        if unescape(found_action) == action:
            return unescape(token)
    raise AssertionError(f"no form posts to {action}")


async def confirm_action(client: httpx.AsyncClient, page: str, action: str) -> httpx.Response:
    """Press the button of ``action`` on ``page``, then confirm; the confirmed answer."""
    asked = await client.post(action, data={"csrf_token": action_token(page, action)})
    assert asked.status_code == 200, asked.text
    assert 'name="confirmed" value="yes"' in asked.text
    token = action_token(asked.text, action)
    return await client.post(action, data={"csrf_token": token, "confirmed": "yes"})
