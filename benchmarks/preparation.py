"""What the load needs before it starts: a migrated database, a caller key, consented users.

Consents go through the real flow, as a browser would: create a request, open its consent
link, press the confirmation page's button (its hidden fields posted back), and follow the
redirects through the sandbox's authorize (auto-approving) back to tsprov's ``/callback``,
the flow cookie carried along by the client's cookie jar.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import subprocess
from urllib.parse import parse_qs, urlsplit

import httpx

from benchmarks.servers import clean_environment, tsprov_command
from benchmarks.stack import CONSENTING_LOGIN, REUSABLE_SCOPE, Stack

CONSENT_CONCURRENCY = 4


def run_tsprov(stack: Stack, *arguments: str) -> str:
    """A ``tsprov`` admin command on the benchmark's database; its stdout."""
    environment = clean_environment(TSPROV_DATABASE_URL=stack.tsprov_database)
    done = subprocess.run(
        [tsprov_command(), *arguments], env=environment, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"tsprov {arguments[0]} failed: {done.stderr.strip()}")
    return done.stdout


def create_caller_key(stack: Stack, scopes: tuple[str, ...] = ("provision", "read")) -> str:
    """A caller with ``scopes``; the key is the last line printed."""
    name = f"bench-{secrets.token_hex(4)}"
    options = [part for scope in scopes for part in ("--scope", scope)]
    printed = run_tsprov(stack, "callers", "create", name, *options)
    return printed.strip().splitlines()[-1]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


_HIDDEN_FIELD = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


async def consent(api: httpx.AsyncClient, key: str, admin_key: str, user: str) -> None:
    """Give ``user`` a live reusable grant by walking its consent link to the result page.

    Production binds a grant to the user's expected login before a key goes out: the user
    is told the login the sandbox approves as, with the admin key.
    """
    named = await api.put(
        f"/v1/users/{user}", headers=bearer(admin_key), json={"tailscale_login": CONSENTING_LOGIN}
    )
    named.raise_for_status()
    created = await api.post(
        f"/v1/users/{user}/provisioning-requests", headers=bearer(key), json={}
    )
    created.raise_for_status()
    link = created.json()["consent_url"]
    if link is None:
        raise RuntimeError(f"{user} already holds a grant: the benchmark needs a fresh database")
    async with httpx.AsyncClient(follow_redirects=True, timeout=30) as browser:
        page = await browser.get(link)
        form = dict(_HIDDEN_FIELD.findall(page.text))
        landed = await browser.post(str(httpx.URL(link).join("/authorize")), data=form)
    if landed.status_code != 200 or landed.url.path != "/done":
        raise RuntimeError(f"consent for {user} ended at {landed.url.path} ({landed.status_code})")


async def consent_users(tsprov_url: str, key: str, admin_key: str, users: list[str]) -> None:
    limit = asyncio.Semaphore(CONSENT_CONCURRENCY)

    async def one(api: httpx.AsyncClient, user: str) -> None:
        async with limit:
            await consent(api, key, admin_key, user)

    async with httpx.AsyncClient(base_url=tsprov_url, timeout=30) as api:
        await asyncio.gather(*(one(api, user) for user in users))


async def sandbox_access_token(stack: Stack) -> str:
    """A reusable grant's access token for the floor, from the sandbox's own OAuth flow."""
    async with httpx.AsyncClient(base_url=stack.sandbox_url, timeout=30) as sandbox:
        approved = await sandbox.get(
            "/a/oauth_authorize",
            params={
                "client_id": stack.credentials.app_id,
                "redirect_uri": stack.floor_callback,
                "response_type": "code",
                "scope": REUSABLE_SCOPE,
                "state": secrets.token_urlsafe(16),
            },
        )
        if approved.status_code != 302:
            raise RuntimeError(f"the sandbox did not approve at once ({approved.status_code})")
        code = parse_qs(urlsplit(approved.headers["location"]).query)["code"][0]
        token = await sandbox.post(
            "/api/v2/oauth/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": stack.floor_callback,
            },
            auth=(stack.credentials.app_id, stack.credentials.app_secret),
        )
        token.raise_for_status()
        access_token: str = token.json()["access_token"]
        return access_token
