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

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="the walkthrough uses curl")


def _script(stack: Stack, user: str) -> tuple[str, list[str]]:
    """Every step as printed; after each step that prints a consent link the shell waits
    for the person's answer. Also the login each link is approved as, in order."""
    walk = steps(stack.sandbox_url, user=user)
    printed = render_steps(walk)
    lines = ["set -e"]
    for step in walk:
        lines.append(render_steps([step]).split("\n", 1)[1])
        assert step.shell in printed
        if step.approve_as:
            lines.append("read -r approved")
    return "\n".join(lines) + "\n", [step.approve_as for step in walk if step.approve_as]


async def test_the_walkthrough_runs_as_printed(
    stack: Stack, sandbox: httpx.AsyncClient, browser: Browser, it_database_url: str
) -> None:
    # ``sandbox`` resets the stand-in (faults, switches) that earlier tests may have set.
    user = new_user()
    key = await new_caller(it_database_url, ["provision", "read", "audit", "admin"])
    script, approvers = _script(stack, user)
    assert approvers == ["alice@example.com", "bob@example.com"]
    shell = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        script,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin", "TSPROV": stack.service_url, "TSPROV_KEY": key},
    )
    assert shell.stdin is not None
    assert shell.stdout is not None
    answers: list[int] = []
    after_first: list[str] = []
    for login in approvers:
        consent_url = ""
        while not consent_url.startswith("http"):
            line = (await asyncio.wait_for(shell.stdout.readline(), 30)).decode()
            if answers:
                after_first.append(line)
            consent_url = line.strip()
        answers.append((await browser.consent(consent_url, login=login)).status_code)
        if login != approvers[-1]:
            shell.stdin.write(b"yes\n")
            await shell.stdin.drain()
    # Alice's approval goes on; Bob's, for Alice's request, is refused with a plain page.
    assert answers == [303, 403]
    rest, errors = await asyncio.wait_for(shell.communicate(b"yes\n"), 60)
    assert shell.returncode == 0, errors.decode()
    printed = "".join(after_first) + rest.decode()
    assert printed.startswith("tailscale up --auth-key=tskey-auth-")
    assert printed.endswith("}\n")
    assert '\n    "status": "joined",\n' in printed
    assert '\n        "code": "identity_mismatch",\n' in printed
    trail = json.loads(printed[printed.rindex('{\n    "version"') :])
    told = [f"{event['target']['type']}.{event['action']}" for event in trail["logs"]]
    assert {"USER.UPDATE", "PROVISIONING_REQUEST.CREATE", "GRANT.CREATE"} <= set(told)
