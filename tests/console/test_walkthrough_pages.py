"""The walkthrough's last steps (``tsprov dev --as LOGIN``), pasted into a shell as printed,
reach /me and /console through the serve stand-in."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from devstack.walkthrough import Banner, serve_steps, walkthrough
from tests.helpers.serve_standin import ConsoleStack

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="the walkthrough uses curl")
OPERATOR = "olga@ops.example.com"


async def test_the_walkthrough_ends_on_me_and_console_as_printed(
    console_stack: ConsoleStack,
) -> None:
    serve_url = console_stack.as_login(OPERATOR)
    banner = Banner(console_stack.service_url, console_stack.sandbox_url, [], "db", "secrets",
                    1.0, serve_url=serve_url, signed_in_as=OPERATOR)  # fmt: skip
    pages = serve_steps(serve_url, OPERATOR)
    printed = walkthrough(banner, "tsprov_key")
    assert all(step.shell in printed for step in pages)
    assert f"{serve_url}/me" in printed
    assert f"{serve_url}/console" in printed
    script = "set -e\n" + "\n".join(step.shell for step in pages) + "\n"
    shell = await asyncio.create_subprocess_exec(
        "bash", "-c", script, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    out, errors = await asyncio.wait_for(shell.communicate(), 60)
    assert shell.returncode == 0, errors.decode()
    assert out.decode().splitlines() == [
        "Your devices and consents · tsprov",
        "Provisioning requests · tsprov",
    ]


def test_without_a_login_the_walkthrough_says_how_to_reach_the_pages() -> None:
    banner = Banner("http://127.0.0.1:8000", "http://127.0.0.1:8088", [], "db", "s", 1.0)
    printed = walkthrough(banner, "tsprov_key")
    assert "tsprov dev --as alice@example.com" in printed
    assert "/console" in printed
    assert "8443" not in printed
