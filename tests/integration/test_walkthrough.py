"""The walkthrough `tsprov dev` prints, pasted into a shell as printed, runs end to end."""

from __future__ import annotations

import asyncio
import json
import shutil

import httpx
import pytest

from devstack.walkthrough import render_steps, steps
from tests.helpers.browser import Browser
from tests.helpers.steps import new_user
from tests.integration.conftest import Stack, new_caller

CONSENT_STEP = 3  # the step that prints the consent link for a person to open

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="the walkthrough uses curl")


def _script(stack: Stack, user: str) -> str:
    """Every step as printed; after the consent step the shell waits for the approval."""
    walk = steps(stack.sandbox_url, user=user)
    before, after = walk[:CONSENT_STEP], walk[CONSENT_STEP:]
    printed = render_steps(walk)
    assert render_steps(before) in printed
    return f"set -e\n{render_steps(before)}\nread -r approved\n{render_steps(after)}\n"


async def test_the_walkthrough_runs_as_printed(
    stack: Stack, sandbox: httpx.AsyncClient, browser: Browser, it_database_url: str
) -> None:
    # ``sandbox`` resets the stand-in (faults, switches) that earlier tests may have set.
    user = new_user()
    key = await new_caller(it_database_url, ["provision", "read", "audit", "admin"])
    shell = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        _script(stack, user),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin", "TSPROV": stack.service_url, "TSPROV_KEY": key},
    )
    assert shell.stdout is not None
    consent_url = ""
    while not consent_url.startswith("http"):
        consent_url = (await asyncio.wait_for(shell.stdout.readline(), 30)).decode().strip()
    approved = await browser.consent(consent_url, login="alice@example.com")
    assert approved.status_code == 303
    rest, errors = await asyncio.wait_for(shell.communicate(b"yes\n"), 60)
    assert shell.returncode == 0, errors.decode()
    printed = rest.decode()
    assert printed.startswith("tailscale up --auth-key=tskey-auth-")
    assert printed.endswith("}\n")
    assert '\n    "status": "joined",\n' in printed
    trail = json.loads(printed[printed.rindex('{\n    "version"') :])
    told = [f"{event['target']['type']}.{event['action']}" for event in trail["logs"]]
    assert {"USER.UPDATE", "PROVISIONING_REQUEST.CREATE", "GRANT.CREATE"} <= set(told)
